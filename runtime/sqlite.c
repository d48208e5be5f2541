/* sqlite.c: resi.sqlite_core, a thin driver of SQLite for resi.store.
 *
 * Why resi has its own driver: Debian bookworm ships two Lua SQLite
 * bindings, both built for Lua 5.1 to 5.4, and neither keeps a value
 * exact. lua-sql-sqlite3 2.6.0-2 (LuaSQL) has no bound parameters at all:
 * it imports no sqlite3_bind_* function, values are spliced into the SQL
 * text through conn:escape. lua-dbi-sqlite3 0.7.2-4 (LuaDBI) binds every
 * number with sqlite3_bind_double (2^53 + 1 comes back as 2^53), reads
 * integers with the 32-bit sqlite3_column_int, reads text with
 * sqlite3_column_text and no length (a NUL byte ends the value), has no
 * blobs and never sets a busy timeout. There is no lua-lsqlite3 package
 * (apt-cache: "No packages found"). What resi needs is small, so it is
 * written here: prepared statements with bound parameters only, integers
 * exact as lua_Integer, strings byte-exact as TEXT, blobs through
 * core.blob(s), NULL as nil, a statement cache, a busy timeout, and errors
 * as objects that name the database's path.
 *
 * Every call blocks the loop while SQLite works; that is accepted because
 * the store is a local file in WAL mode: a read takes microseconds, a
 * commit with synchronous=FULL one fsync of the WAL (a run's claim: median
 * 0.14 ms over 1,000 on this project's machine, ext4 on virtio; 0.02 ms
 * with NORMAL). The Lua side keeps transactions short (BEGIN IMMEDIATE, a
 * few statements, COMMIT). Waiting for another process's write lock also
 * blocks, in SQLite's busy handler (sleeps of 1, 2, 5, 10 ... 100 ms) for
 * at most the busy timeout (5 s by default); that happens only when two
 * processes write the same file, and resi's writers hold the lock for
 * well under a millisecond.
 *
 * Parameters are `?` (positional) or `$N` (argument N, the PostgreSQL
 * form, so the run table's statements run unchanged on both engines). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "resi.h"

#define CONN_MT "resi.sqlite.conn"
#define BLOB_MT "resi.sqlite.blob"
#define ERROR_MT "resi.store.error"
#define CACHE_MAX 64         /* statements kept prepared per connection */
#define DEFAULT_BUSY_MS 5000 /* how long a writer waits for another's lock */

/* A connection: the handle (NULL once closed) and the database's path.
 * Its user value 1 is the statement cache: SQL text -> light userdata. */
typedef struct {
  sqlite3 *db;
  int cached; /* entries in the cache */
  char path[];
} sql_conn;

/* ---- errors ----------------------------------------------------------- */

/* The short name of a result code, for error.code. */
static const char *code_name(int rc) {
  switch (rc & 0xff) {
  case SQLITE_BUSY: return "busy";
  case SQLITE_LOCKED: return "locked";
  case SQLITE_READONLY: return "readonly";
  case SQLITE_CORRUPT: return "corrupt";
  case SQLITE_NOTADB: return "notadb";
  case SQLITE_FULL: return "full";
  case SQLITE_CANTOPEN: return "cantopen";
  case SQLITE_IOERR: return "ioerr";
  case SQLITE_PERM: return "perm";
  case SQLITE_CONSTRAINT: return "constraint";
  case SQLITE_NOMEM: return "nomem";
  case SQLITE_MISUSE: return "misuse";
  case SQLITE_RANGE: return "range";
  case SQLITE_MISMATCH: return "mismatch";
  case SQLITE_INTERRUPT: return "interrupt";
  default: return "error";
  }
}

/* Pushes a store error {kind="store", code=, path=, message=} whose
 * message is "resi.store: PATH: TEXT". */
static void push_error(lua_State *L, const char *code, const char *path, const char *text) {
  lua_createtable(L, 0, 4); /* stack: err */
  lua_pushliteral(L, "store");
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, path);
  lua_setfield(L, -2, "path");
  lua_pushfstring(L, "resi.store: %s: %s", path, text); /* stack: err, message */
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, ERROR_MT);
}

/* Raises the store error for result code rc with SQLite's text. */
static int raise_sqlite(lua_State *L, const sql_conn *c, int rc, const char *text) {
  push_error(L, code_name(rc), c->path, text); /* stack: .., err */
  return lua_error(L);
}

/* core.error(code, path, text) -> a store error object, for the errors
 * resi.store raises itself (a directory it cannot create, a schema from a
 * newer resi), so every store error has the same shape. */
static int error_new(lua_State *L) {
  push_error(L, luaL_checkstring(L, 1), luaL_checkstring(L, 2), luaL_checkstring(L, 3));
  return 1; /* stack: .., err */
}

/* err:__tostring() -> its message. */
static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "message"); /* stack: err, message */
  return 1;
}

/* ---- opening and closing ---------------------------------------------- */

/* Creates path as an empty file of mode 0600 when it does not exist, so
 * SQLite never creates it with the umask's mode; an existing file is left
 * as it is. Returns 0, or the errno of the failure. */
static int create_private(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno == EEXIST ? 0 : errno;
  int rc = fchmod(fd, 0600) < 0 ? errno : 0; /* the umask may have removed bits */
  close(fd);
  return rc;
}

/* Closes the handle: finalizes every statement (cached or not), then the
 * connection; an open transaction is rolled back by SQLite. */
static void conn_shut(sql_conn *c) {
  if (c->db == NULL) return;
  for (sqlite3_stmt *st; (st = sqlite3_next_stmt(c->db, NULL)) != NULL;) sqlite3_finalize(st);
  sqlite3_close_v2(c->db);
  c->db = NULL, c->cached = 0;
}

/* core.open(path [, busy_ms]) -> conn | nil, message, code: opens (and
 * creates, mode 0600) the database at path; ":memory:" is a private
 * in-memory database. */
static int sql_open(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  lua_Integer busy = luaL_optinteger(L, 2, DEFAULT_BUSY_MS);
  luaL_argcheck(L, busy >= 0 && busy <= 3600000, 2, "busy timeout must be 0..3600000 ms");
  int err = strcmp(path, ":memory:") == 0 ? 0 : create_private(path);
  if (err) return resi_push_fail(L, "cantopen", "resi.store: %s: cannot create the file: %s", path, strerror(err));
  sql_conn *c = lua_newuserdatauv(L, sizeof *c + len + 1, 1); /* stack: path, [busy,] conn */
  c->db = NULL, c->cached = 0;
  memcpy(c->path, path, len + 1);
  luaL_setmetatable(L, CONN_MT);
  lua_newtable(L); /* stack: .., conn, cache */
  lua_setiuservalue(L, -2, 1);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
  if (rc != SQLITE_OK) {
    const char *text = lua_pushstring(L, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc)); /* stack: .., conn, text */
    conn_shut(c);
    return resi_push_fail(L, code_name(rc), "resi.store: %s: %s", path, text);
  }
  sqlite3_busy_timeout(c->db, (int)busy);
  return 1; /* stack: .., conn */
}

/* The open connection at index 1, or an error naming its path. */
static sql_conn *check_open(lua_State *L) {
  sql_conn *c = luaL_checkudata(L, 1, CONN_MT);
  if (c->db == NULL) {
    push_error(L, "closed", c->path, "the database is closed"); /* stack: .., err */
    lua_error(L);
  }
  return c;
}

/* conn:close(): closes the connection (also __gc and __close); a second
 * call does nothing. */
static int conn_close(lua_State *L) {
  sql_conn *c = luaL_checkudata(L, 1, CONN_MT);
  conn_shut(c);
  lua_newtable(L); /* stack: conn, cache (the old one holds dangling pointers) */
  lua_setiuservalue(L, 1, 1);
  return 0;
}

/* conn:path() -> the path the connection was opened with. */
static int conn_path(lua_State *L) {
  sql_conn *c = luaL_checkudata(L, 1, CONN_MT);
  lua_pushstring(L, c->path); /* stack: conn, path */
  return 1;
}

/* conn:is_open() -> false once closed. */
static int conn_is_open(lua_State *L) {
  sql_conn *c = luaL_checkudata(L, 1, CONN_MT);
  lua_pushboolean(L, c->db != NULL); /* stack: conn, open */
  return 1;
}

/* conn:in_transaction() -> true between BEGIN and COMMIT/ROLLBACK (false
 * too after SQLite rolled a transaction back by itself). */
static int conn_in_transaction(lua_State *L) {
  sql_conn *c = check_open(L);
  lua_pushboolean(L, !sqlite3_get_autocommit(c->db)); /* stack: conn, in */
  return 1;
}

/* conn:__tostring() */
static int conn_tostring(lua_State *L) {
  sql_conn *c = luaL_checkudata(L, 1, CONN_MT);
  lua_pushfstring(L, "resi.store (sqlite %s%s)", c->path, c->db ? "" : ", closed");
  return 1;
}

/* ---- statements ------------------------------------------------------- */

/* Is s only white space (what may follow the one statement)? */
static int blank(const char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  return *s == '\0';
}

/* Prepares sql (exactly one statement) and keeps it in the cache while
 * the cache has room; *kept is 0 for a statement to finalize after use. */
static sqlite3_stmt *prepare(lua_State *L, sql_conn *c, int sql_idx, int *kept) {
  const char *sql = luaL_checkstring(L, sql_idx), *tail = NULL;
  sqlite3_stmt *st = NULL;
  *kept = c->cached < CACHE_MAX;
  int rc = sqlite3_prepare_v3(c->db, sql, -1, *kept ? SQLITE_PREPARE_PERSISTENT : 0, &st, &tail);
  if (rc != SQLITE_OK) raise_sqlite(L, c, rc, sqlite3_errmsg(c->db));
  if (st == NULL || !blank(tail)) {
    sqlite3_finalize(st);
    push_error(L, "misuse", c->path, "a statement must be one SQL statement (conn:exec runs scripts)");
    lua_error(L);
  }
  if (*kept) {
    lua_getiuservalue(L, 1, 1); /* stack: .., cache */
    lua_pushvalue(L, sql_idx);
    lua_pushlightuserdata(L, st); /* stack: .., cache, sql, stmt */
    lua_rawset(L, -3);
    lua_pop(L, 1);
    c->cached++;
  }
  return st;
}

/* The prepared statement for the SQL at sql_idx, from the cache or new. */
static sqlite3_stmt *statement(lua_State *L, sql_conn *c, int sql_idx, int *kept) {
  lua_getiuservalue(L, 1, 1); /* stack: .., cache */
  lua_pushvalue(L, sql_idx);
  lua_rawget(L, -2); /* stack: .., cache, stmt|nil */
  sqlite3_stmt *st = lua_touserdata(L, -1);
  lua_pop(L, 2);
  if (st == NULL) return prepare(L, c, sql_idx, kept);
  *kept = 1;
  return st;
}

/* Returns a statement to its idle state (no bindings, no open read), or
 * finalizes it when it is not cached. */
static void release(sqlite3_stmt *st, int kept) {
  if (!kept) {
    sqlite3_finalize(st);
    return;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

/* Releases st, then raises a store error with text. */
static int fail_statement(lua_State *L, sql_conn *c, sqlite3_stmt *st, int kept, const char *code, const char *text) {
  release(st, kept);
  push_error(L, code, c->path, text); /* stack: .., err */
  return lua_error(L);
}

/* The argument that feeds parameter i: `?` and `?N` are positional, `$N`
 * is argument N; 0 for a name resi does not use (:name, @name). */
static int param_arg(sqlite3_stmt *st, int i) {
  const char *name = sqlite3_bind_parameter_name(st, i);
  if (name == NULL) return i;
  if (name[0] != '$' && name[0] != '?') return 0;
  char *end;
  long n = strtol(name + 1, &end, 10);
  return *end == '\0' && n > 0 && n <= 999 ? (int)n : 0;
}

/* Binds the Lua value at idx to parameter i: nil (or JSON null) is NULL,
 * a boolean 0/1, an integer exact, a float a REAL, a string TEXT with its
 * exact length (NUL bytes kept), core.blob(s) a BLOB. Returns a SQLite
 * result code, or -1 for a value that cannot be bound. */
static int bind_one(lua_State *L, sqlite3_stmt *st, int i, int idx) {
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return sqlite3_bind_null(st, i);
  case LUA_TBOOLEAN: return sqlite3_bind_int(st, i, lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return sqlite3_bind_int64(st, i, (sqlite3_int64)lua_tointeger(L, idx));
    return sqlite3_bind_double(st, i, lua_tonumber(L, idx));
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    return sqlite3_bind_text64(st, i, s, len, SQLITE_STATIC, SQLITE_UTF8);
  case LUA_TLIGHTUSERDATA:
    return lua_touserdata(L, idx) == NULL ? sqlite3_bind_null(st, i) : -1;
  case LUA_TUSERDATA:
    if (luaL_testudata(L, idx, BLOB_MT) == NULL) return -1;
    lua_getiuservalue(L, idx, 1); /* stack: .., bytes (kept alive by the blob at idx) */
    s = lua_tolstring(L, -1, &len);
    lua_pop(L, 1);
    return sqlite3_bind_blob64(st, i, s, len, SQLITE_STATIC);
  default: return -1;
  }
}

/* Binds arguments first.. to st's parameters; the count must match. The
 * strings stay on the stack (SQLITE_STATIC) until the statement is
 * released. */
static void bind_all(lua_State *L, sql_conn *c, sqlite3_stmt *st, int kept, int first) {
  sqlite3_reset(st); /* idle already, unless a row push ran out of memory */
  int nargs = lua_gettop(L) - first + 1, count = sqlite3_bind_parameter_count(st), need = 0;
  for (int i = 1; i <= count; i++) {
    int arg = param_arg(st, i);
    if (arg == 0) fail_statement(L, c, st, kept, "misuse", "parameters must be ? or $N");
    if (arg > need) need = arg;
  }
  if (need != nargs) {
    const char *text = lua_pushfstring(L, "the statement takes %d parameters, %d given", need, nargs);
    fail_statement(L, c, st, kept, "range", text);
  }
  for (int i = 1; i <= count; i++) {
    int idx = first + param_arg(st, i) - 1, rc = bind_one(L, st, i, idx);
    if (rc == SQLITE_OK) continue;
    const char *text = rc < 0 ? lua_pushfstring(L, "cannot bind a %s (parameter %d)", luaL_typename(L, idx), i)
                              : sqlite3_errmsg(c->db);
    fail_statement(L, c, st, kept, rc < 0 ? "mismatch" : code_name(rc), text);
  }
}

/* Pushes column i of the current row, exactly: INTEGER as an integer,
 * REAL as a float, TEXT and BLOB as a string of their bytes; returns 0
 * (pushing nothing) for NULL. */
static int push_column(lua_State *L, sqlite3_stmt *st, int i) {
  const void *p;
  switch (sqlite3_column_type(st, i)) {
  case SQLITE_INTEGER: lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, i)); return 1;
  case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, i)); return 1;
  case SQLITE_TEXT: p = sqlite3_column_text(st, i); break;
  case SQLITE_BLOB: p = sqlite3_column_blob(st, i); break;
  default: return 0;
  }
  size_t n = (size_t)sqlite3_column_bytes(st, i);
  lua_pushlstring(L, p ? p : "", p ? n : 0); /* stack: .., value */
  return 1;
}

/* Pushes the current row as a table keyed by column name (NULLs absent). */
static void push_row(lua_State *L, sqlite3_stmt *st) {
  int n = sqlite3_column_count(st);
  lua_createtable(L, 0, n); /* stack: .., row */
  for (int i = 0; i < n; i++) {
    const char *name = sqlite3_column_name(st, i);
    if (name && push_column(L, st, i)) lua_setfield(L, -2, name); /* stack: .., row */
  }
}

/* Steps st to its end; with want_rows, pushes its rows as a list (max
 * rows at most; the rest are stepped over). Raises on a failed step. */
static void step_all(lua_State *L, sql_conn *c, sqlite3_stmt *st, int kept, int want_rows, int max) {
  int rc, n = 0;
  if (want_rows) lua_newtable(L); /* stack: .., rows */
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!want_rows || n >= max) continue;
    push_row(L, st); /* stack: .., rows, row */
    lua_rawseti(L, -2, ++n);
  }
  if (rc != SQLITE_DONE) {
    const char *text = lua_pushstring(L, sqlite3_errmsg(c->db)); /* stack: .., text */
    fail_statement(L, c, st, kept, code_name(rc), text);
  }
  release(st, kept);
}

/* Runs the statement at index 2 with arguments 3.. (pushing its rows when
 * want_rows); returns the connection. */
static sql_conn *run_statement(lua_State *L, int want_rows, int max) {
  sql_conn *c = check_open(L);
  int kept;
  sqlite3_stmt *st = statement(L, c, 2, &kept);
  bind_all(L, c, st, kept, 3);
  step_all(L, c, st, kept, want_rows, max);
  return c;
}

/* conn:rows(sql, ...) -> list of rows, each {column = value}. */
static int conn_rows(lua_State *L) {
  run_statement(L, 1, INT32_MAX);
  return 1; /* stack: .., rows */
}

/* conn:first(sql, ...) -> the first row, or nil when there is none (the
 * statement still runs to its end, so a write with RETURNING completes). */
static int conn_first(lua_State *L) {
  run_statement(L, 1, 1);
  lua_rawgeti(L, -1, 1); /* stack: .., rows, row|nil */
  return 1;
}

/* conn:run(sql, ...) -> the number of rows the statement changed. */
static int conn_run(lua_State *L) {
  sql_conn *c = run_statement(L, 0, 0);
  lua_pushinteger(L, (lua_Integer)sqlite3_changes64(c->db)); /* stack: .., changes */
  return 1;
}

/* conn:exec(script): runs SQL without parameters, several statements
 * allowed (pragmas, schema, BEGIN/COMMIT/SAVEPOINT). */
static int conn_exec(lua_State *L) {
  sql_conn *c = check_open(L);
  const char *sql = luaL_checkstring(L, 2);
  char *msg = NULL;
  int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
  if (rc == SQLITE_OK) return 0;
  lua_pushstring(L, msg ? msg : sqlite3_errstr(rc)); /* stack: conn, sql, text */
  sqlite3_free(msg);
  return raise_sqlite(L, c, rc, lua_tostring(L, -1));
}

/* core.blob(s) -> a value that binds as a BLOB (a plain string binds as
 * TEXT). */
static int blob_new(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_newuserdatauv(L, 0, 1); /* stack: s, blob */
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, BLOB_MT);
  return 1;
}

/* Opens resi.sqlite_core: open, blob, error and the library's version. */
int luaopen_resi_sqlite_core(lua_State *L) {
  static const luaL_Reg conn_methods[] = {
      {"exec", conn_exec},   {"run", conn_run},           {"rows", conn_rows},
      {"first", conn_first}, {"close", conn_close},       {"path", conn_path},
      {"is_open", conn_is_open}, {"in_transaction", conn_in_transaction}, {NULL, NULL},
  };
  static const luaL_Reg conn_meta[] = {
      {"__gc", conn_close}, {"__close", conn_close}, {"__tostring", conn_tostring}, {NULL, NULL}};
  static const luaL_Reg error_meta[] = {{"__tostring", error_tostring}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"open", sql_open}, {"blob", blob_new}, {"error", error_new}, {NULL, NULL}};
  resi_new_class(L, CONN_MT, conn_methods, conn_meta);
  resi_new_class(L, BLOB_MT, NULL, NULL);
  resi_new_class(L, ERROR_MT, NULL, error_meta);
  luaL_newlib(L, funcs); /* stack: core */
  lua_pushstring(L, sqlite3_libversion());
  lua_setfield(L, -2, "version"); /* stack: core */
  resi_set_integer(L, "default_busy_ms", DEFAULT_BUSY_MS); /* stack: core */
  return 1;
}
