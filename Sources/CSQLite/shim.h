#ifndef VSECURE_CSQLITE_SHIM_H
#define VSECURE_CSQLITE_SHIM_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a cast macro that Swift cannot import: bind through these so SQLite
   copies the bytes before the call returns. Only ciphertext and public text are bound. */
static inline int vsecure_sqlite3_bind_blob_copy(sqlite3_stmt *s, int i, const void *p, int n) {
    return sqlite3_bind_blob(s, i, p, n, SQLITE_TRANSIENT);
}
static inline int vsecure_sqlite3_bind_text_copy(sqlite3_stmt *s, int i, const char *p, int n) {
    return sqlite3_bind_text(s, i, p, n, SQLITE_TRANSIENT);
}
/* For a writer that must stay cheap (a launch receipt): do not checkpoint when the connection
   closes, and keep the WAL file, so a short-lived process neither syncs the database nor makes
   and unlinks the WAL every time. sqlite3_db_config is variadic, so it is wrapped here. */
static inline int vsecure_sqlite3_keep_wal_on_close(sqlite3 *db) {
    int on = 1;
    int rc = sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
    if (rc != SQLITE_OK) return rc;
    return sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
}
/* For a process where one thread alone uses SQLite (vsecure-run): no mutexes at all, and no
   memory statistics (kept under a global mutex on every allocation by default). Must run before
   SQLite is initialized; afterwards it changes nothing and returns SQLITE_MISUSE. */
static inline int vsecure_sqlite3_single_thread(void) {
    int rc = sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
    if (rc != SQLITE_OK) return rc;
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
#endif
