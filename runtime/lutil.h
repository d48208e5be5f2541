/* lutil.h: the small mechanisms every C module of resi needs, written once
 * (as luv's util.c and Lua's lauxlib do): a growable byte buffer with
 * overflow checks, class (metatable) registration, the `nil, message, code`
 * failure triple, a close callback that frees a handle, the process failure
 * counter, how an error object becomes text, and random bytes from the
 * kernel.
 *
 * lutil.c is linked into the binary and, as its own private copy, into each
 * on-demand module (the HTTP client), so a module never depends on symbols
 * exported by the host. */
#ifndef RESI_LUTIL_H
#define RESI_LUTIL_H

#include <stddef.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

/* Registry key of the count of errors reported outside task:wait (luv
 * callbacks, unobserved tasks): the process exits non-zero when it is > 0. */
#define RESI_REG_FAILED "resi.failed"

/* A growable byte buffer. Zero-initialise it; free it with resi_buf_free. */
typedef struct {
  char *data;
  size_t len, cap;
} resi_buf;

/* Makes room for n more bytes; returns 0 when the size would overflow or
 * memory runs out (the buffer is then unchanged). */
int resi_buf_reserve(resi_buf *b, size_t n);

/* Appends n bytes; returns 0 when memory runs out. Inline: the JSON
 * encoder appends a byte at a time. */
static inline int resi_buf_add(resi_buf *b, const void *p, size_t n) {
  if (b->cap - b->len < n && !resi_buf_reserve(b, n)) return 0;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

/* Room for any lua_Integer's decimal digits and sign. */
#define RESI_INT_DIGITS 24

/* Writes v's decimal digits (no NUL) so that they end at end, and returns
 * where they start: `char b[RESI_INT_DIGITS], *s = resi_int_digits(b +
 * sizeof b, v);` then the text is s .. b + sizeof b. Cheaper than snprintf
 * where a response or JSON text is written per request. */
static inline char *resi_int_digits(char *end, lua_Integer v) {
  lua_Unsigned u = v < 0 ? 0u - (lua_Unsigned)v : (lua_Unsigned)v; /* LUA_MININTEGER too */
  do *--end = (char)('0' + u % 10), u /= 10;
  while (u);
  if (v < 0) *--end = '-';
  return end;
}

/* Removes the first n bytes (n <= len), keeping the memory for reuse. */
void resi_buf_drop(resi_buf *b, size_t n);

/* Releases the buffer's memory and empties it. */
void resi_buf_free(resi_buf *b);

/* Creates (or finds) the metatable `name` with __name, the metamethods in
 * meta (may be NULL) and an __index table holding methods (may be NULL).
 * Leaves the Lua stack as it was. */
void resi_new_class(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta);

/* resi_new_class for the common case of a class whose one metamethod is
 * __gc (gc), with methods (may be NULL) in its __index table. */
void resi_new_gc_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);

/* Pushes a userdata of class mt that holds one pointer, set to NULL, and
 * returns the pointer's address (a T **): how a Lua object refers to C
 * memory that may outlive it (a libuv handle is freed in its close
 * callback, after the __gc). */
void *resi_new_handle(lua_State *L, const char *mt);

/* Sets t[key] = v in the table on top of the stack. */
void resi_set_integer(lua_State *L, const char *key, lua_Integer v);

/* Pushes nil, a formatted message and code (a string such as "error" or
 * "busy"); returns 3, for `return resi_push_fail(L, ...)` (as
 * luaL_fileresult does). */
int resi_push_fail(lua_State *L, const char *code, const char *fmt, ...);

/* uv_close callback for a handle allocated with malloc: frees it. */
void resi_free_on_close(uv_handle_t *handle);

/* Adds one to the process failure count (RESI_REG_FAILED). */
void resi_add_failure(lua_State *L);

/* The process failure count. */
lua_Integer resi_failures(lua_State *L);

/* Pushes the text the error object at idx becomes, the one rule (that of
 * lua.c's msghandler): a string or number as it is, another value through
 * its __tostring (when that gives a string), else "(error object is a %s
 * value)"; then a traceback of co from level. */
void resi_push_error_text(lua_State *L, lua_State *co, int idx, int level);

/* Message handler for lua_pcall: the error's text with a traceback of L. */
int resi_msghandler(lua_State *L);

/* Fills buf with n bytes from the kernel's generator (getrandom); returns 0
 * when it fails. Secrets and keys come from here, never from math.random. */
int resi_random_bytes(void *buf, size_t n);

#endif
