#ifndef VSECURE_CCURL_LOADER_H
#define VSECURE_CCURL_LOADER_H
/* libcurl, loaded with dlopen on first use, so that a program linking this target does not
   load libcurl (and its dozens of shared libraries) unless it talks to a server. Only the
   handful of calls vsecure needs are exposed, each with fixed argument types: Swift cannot
   call the variadic curl_easy_setopt/getinfo itself.

   Every allocation libcurl makes after vs_curl_load() goes through allocators that zero the
   block before freeing it, so response bytes do not linger in freed receive buffers. */
#include <stddef.h>
#include <stdint.h>

/* All setters return a CURLcode (0 is success). */

/* 0 on success; otherwise a static message naming what failed (never secret). */
const char *vs_curl_load(void);

typedef struct vs_curl vs_curl;

vs_curl *vs_curl_new(void);
void vs_curl_free(vs_curl *handle);

/* Replaces the request's header list; the strings are copied by libcurl. */
int vs_curl_set_headers(vs_curl *handle, const char *const *lines, size_t count);
/* The body to send (not copied: it must stay valid until perform returns). */
int vs_curl_set_body(vs_curl *handle, const void *bytes, size_t count);

typedef size_t (*vs_curl_sink)(const char *bytes, size_t count, void *context);
int vs_curl_set_sink(vs_curl *handle, vs_curl_sink sink, void *context);

/* The request as vsecure makes it: URL, timeouts in milliseconds, TLS (a CA file or NULL for the
   system store; verify 0 turns verification off), no redirects, http/https only, a User-Agent. */
int vs_curl_prepare(vs_curl *handle, const char *url, long connect_timeout_ms, long total_timeout_ms,
                    const char *ca_file, int verify);
/* POST with the body set by vs_curl_set_body, or another method with no body. */
int vs_curl_set_method(vs_curl *handle, const char *method);

int vs_curl_perform(vs_curl *handle);
long vs_curl_status(vs_curl *handle);
/* The answer's Retry-After in seconds (a date is turned into seconds from now); 0 when absent. */
long long vs_curl_retry_after(vs_curl *handle);
const char *vs_curl_error_text(int code);
/* The error buffer libcurl fills on failure (empty when none). */
const char *vs_curl_error_detail(vs_curl *handle);
#endif
