#ifndef VSECURE_CSODIUM_SHIM_H
#define VSECURE_CSODIUM_SHIM_H
#include <sodium.h>
#endif
