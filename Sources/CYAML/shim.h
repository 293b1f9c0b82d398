#ifndef VSECURE_CYAML_SHIM_H
#define VSECURE_CYAML_SHIM_H
#include <yaml.h>
#endif
