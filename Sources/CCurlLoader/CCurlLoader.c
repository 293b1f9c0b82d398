#include "CCurlLoader.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* --- allocators that wipe ------------------------------------------------------------- */

/* Each block carries its size in a header so free can zero exactly what it handed out. */
typedef struct { size_t size; size_t pad; } block_header;

static void wipe(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

static void *w_malloc(size_t size) {
    block_header *h = malloc(sizeof(block_header) + size);
    if (!h) return NULL;
    h->size = size;
    return h + 1;
}

static void w_free(void *p) {
    if (!p) return;
    block_header *h = (block_header *)p - 1;
    wipe(h, sizeof(block_header) + h->size);
    free(h);
}

static void *w_realloc(void *p, size_t size) {
    if (!p) return w_malloc(size);
    if (size == 0) { w_free(p); return NULL; }
    block_header *old = (block_header *)p - 1;
    void *fresh = w_malloc(size);
    if (!fresh) return NULL;
    memcpy(fresh, p, old->size < size ? old->size : size);
    w_free(p);
    return fresh;
}

static char *w_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = w_malloc(n);
    if (copy) memcpy(copy, s, n);
    return copy;
}

static void *w_calloc(size_t count, size_t size) {
    if (size && count > (size_t)-1 / size) return NULL;
    void *p = w_malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

/* --- loading ---------------------------------------------------------------------------- */

typedef CURLcode (*global_init_mem_fn)(long, curl_malloc_callback, curl_free_callback, curl_realloc_callback,
                                       curl_strdup_callback, curl_calloc_callback);
typedef CURL *(*easy_init_fn)(void);
typedef void (*easy_cleanup_fn)(CURL *);
typedef CURLcode (*easy_setopt_fn)(CURL *, CURLoption, ...);
typedef CURLcode (*easy_perform_fn)(CURL *);
typedef CURLcode (*easy_getinfo_fn)(CURL *, CURLINFO, ...);
typedef const char *(*easy_strerror_fn)(CURLcode);
typedef struct curl_slist *(*slist_append_fn)(struct curl_slist *, const char *);
typedef void (*slist_free_all_fn)(struct curl_slist *);

static struct {
    easy_init_fn easy_init;
    easy_cleanup_fn easy_cleanup;
    easy_setopt_fn easy_setopt;
    easy_perform_fn easy_perform;
    easy_getinfo_fn easy_getinfo;
    easy_strerror_fn easy_strerror;
    slist_append_fn slist_append;
    slist_free_all_fn slist_free_all;
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const char *load_error = "libcurl was not loaded";

static void load(void) {
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libcurl.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) { load_error = "cannot load libcurl (libcurl.so.4); install libcurl4"; return; }
    global_init_mem_fn global_init_mem = (global_init_mem_fn)dlsym(lib, "curl_global_init_mem");
    api.easy_init = (easy_init_fn)dlsym(lib, "curl_easy_init");
    api.easy_cleanup = (easy_cleanup_fn)dlsym(lib, "curl_easy_cleanup");
    api.easy_setopt = (easy_setopt_fn)dlsym(lib, "curl_easy_setopt");
    api.easy_perform = (easy_perform_fn)dlsym(lib, "curl_easy_perform");
    api.easy_getinfo = (easy_getinfo_fn)dlsym(lib, "curl_easy_getinfo");
    api.easy_strerror = (easy_strerror_fn)dlsym(lib, "curl_easy_strerror");
    api.slist_append = (slist_append_fn)dlsym(lib, "curl_slist_append");
    api.slist_free_all = (slist_free_all_fn)dlsym(lib, "curl_slist_free_all");
    if (!global_init_mem || !api.easy_init || !api.easy_cleanup || !api.easy_setopt || !api.easy_perform ||
        !api.easy_getinfo || !api.easy_strerror || !api.slist_append || !api.slist_free_all) {
        load_error = "libcurl lacks a function vsecure needs";
        return;
    }
    if (global_init_mem(CURL_GLOBAL_DEFAULT, w_malloc, w_free, w_realloc, w_strdup, w_calloc) != CURLE_OK) {
        load_error = "curl_global_init_mem failed";
        return;
    }
    load_error = NULL;
}

const char *vs_curl_load(void) {
    pthread_once(&load_once, load);
    return load_error;
}

/* --- handles ---------------------------------------------------------------------------- */

typedef struct { vs_curl_sink sink; void *context; } sink_box;

struct vs_curl {
    CURL *curl;
    struct curl_slist *headers;
    sink_box body;
    char error[CURL_ERROR_SIZE];
};

vs_curl *vs_curl_new(void) {
    if (vs_curl_load()) return NULL;
    vs_curl *h = w_calloc(1, sizeof(vs_curl));
    if (!h) return NULL;
    h->curl = api.easy_init();
    if (!h->curl) { w_free(h); return NULL; }
    api.easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->error);
    api.easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    return h;
}

void vs_curl_free(vs_curl *h) {
    if (!h) return;
    if (h->headers) api.slist_free_all(h->headers);
    api.easy_cleanup(h->curl);
    w_free(h);
}


int vs_curl_set_headers(vs_curl *h, const char *const *lines, size_t count) {
    if (h->headers) { api.slist_free_all(h->headers); h->headers = NULL; }
    for (size_t i = 0; i < count; i++) {
        struct curl_slist *next = api.slist_append(h->headers, lines[i]);
        if (!next) return CURLE_OUT_OF_MEMORY;
        h->headers = next;
    }
    return api.easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers);
}

int vs_curl_set_body(vs_curl *h, const void *bytes, size_t count) {
    CURLcode rc = api.easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)count);
    if (rc != CURLE_OK) return rc;
    return api.easy_setopt(h->curl, CURLOPT_POSTFIELDS, bytes);
}

static size_t body_trampoline(char *bytes, size_t size, size_t count, void *userdata) {
    sink_box *box = userdata;
    return box->sink(bytes, size * count, box->context);
}

int vs_curl_set_sink(vs_curl *h, vs_curl_sink sink, void *context) {
    h->body.sink = sink;
    h->body.context = context;
    CURLcode rc = api.easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, body_trampoline);
    if (rc != CURLE_OK) return rc;
    return api.easy_setopt(h->curl, CURLOPT_WRITEDATA, &h->body);
}

int vs_curl_prepare(vs_curl *h, const char *url, long connect_timeout_ms, long total_timeout_ms,
                    const char *ca_file, int verify) {
    CURLcode rc;
    if ((rc = api.easy_setopt(h->curl, CURLOPT_URL, url)) != CURLE_OK) return rc;
    if ((rc = api.easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms)) != CURLE_OK) return rc;
    if ((rc = api.easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, total_timeout_ms)) != CURLE_OK) return rc;
    /* Redirects are never followed: the API key must not reach another host. */
    if ((rc = api.easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L)) != CURLE_OK) return rc;
    if ((rc = api.easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https")) != CURLE_OK) return rc;
    if ((rc = api.easy_setopt(h->curl, CURLOPT_USERAGENT, "vsecure/0.1")) != CURLE_OK) return rc;
    if (ca_file && (rc = api.easy_setopt(h->curl, CURLOPT_CAINFO, ca_file)) != CURLE_OK) return rc;
    if ((rc = api.easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L)) != CURLE_OK) return rc;
    return api.easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
}

int vs_curl_set_method(vs_curl *h, const char *method) {
    if (strcmp(method, "POST") == 0) return api.easy_setopt(h->curl, CURLOPT_POST, 1L);
    if (strcmp(method, "GET") == 0) return api.easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    return api.easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
}

int vs_curl_perform(vs_curl *h) {
    h->error[0] = 0;
    return api.easy_perform(h->curl);
}

long vs_curl_status(vs_curl *h) {
    long status = 0;
    api.easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

long long vs_curl_retry_after(vs_curl *h) {
    curl_off_t seconds = 0;
    if (api.easy_getinfo(h->curl, CURLINFO_RETRY_AFTER, &seconds) != CURLE_OK || seconds < 0) return 0;
    return (long long)seconds;
}

const char *vs_curl_error_text(int code) {
    return api.easy_strerror ? api.easy_strerror((CURLcode)code) : "libcurl is not loaded";
}

const char *vs_curl_error_detail(vs_curl *h) { return h->error; }
