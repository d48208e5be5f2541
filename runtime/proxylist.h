/* proxylist.h: the proxy-list codec shared by its C files, and the parts of
 * its Lua binding that the binding's files share.
 *
 * An entry is {scheme, host, port, user, pass}. Parsed strings live in an
 * arena (one growing resi_buf); an entry holds offsets into it, so a list
 * of 250,000 proxies is two allocations, not 250,000 tables.
 *
 * The codec (no Lua in it):
 *   proxylist_parse.c   one text line -> entry (list, userpass, url, hostport, proxychains, auto)
 *   proxylist_json.c    ResiFactory's JSON array of objects -> entries, chunk by chunk
 *   proxylist_format.c  entry -> text in each format; a rejected line masked
 *   proxylist_stream.c  splits chunks into lines (CRLF, BOM, long lines)
 * The Lua binding, resi.proxylist_core (one class per file, as luv has one
 * file per handle kind):
 *   proxylist.c         the module: luaopen, argument checks, random bytes
 *   proxylist_list.c    a list (resi.proxylist.list) and the functions that build lists
 *   proxylist_reader.c  a streaming reader (resi.proxylist.reader): text in
 *                       chunks -> a list, or -> text in another format
 *   proxylist_view.c    list:entries(): one reused view per loop, no table per entry */
#ifndef RESI_PROXYLIST_H
#define RESI_PROXYLIST_H

#include <stddef.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "lutil.h"

/* Formats. AUTO only parses (it detects the format of each line). */
enum {
  RESI_PL_AUTO,
  RESI_PL_LIST,
  RESI_PL_USERPASS,
  RESI_PL_URL,
  RESI_PL_JSON,
  RESI_PL_HOSTPORT,
  RESI_PL_PROXYCHAINS,
  RESI_PL_NFORMATS
};

/* Schemes, in the order of resi_pl_scheme_names. */
enum { RESI_PL_HTTP, RESI_PL_HTTPS, RESI_PL_SOCKS4, RESI_PL_SOCKS4A, RESI_PL_SOCKS5, RESI_PL_SOCKS5H, RESI_PL_NSCHEMES };

/* Entry flags. */
#define RESI_PL_HAS_USER 1u
#define RESI_PL_HAS_PASS 2u
#define RESI_PL_IPV6 4u
/* Set by the text parser when the credentials are bytes of a token with no
 * whitespace, control byte or DEL and the username holds no ':' (list,
 * userpass, hostport and auto's forms of them; never a URL's decoded text):
 * the line formats can carry them as they are, so writing skips the checks. */
#define RESI_PL_CLEAN 8u

/* Longest line the text parser accepts (longer ones are reported). */
#define RESI_PL_MAX_LINE 65536
/* Room for a reason message (never holds credentials). */
#define RESI_PL_REASON 160

extern const char *const resi_pl_scheme_names[RESI_PL_NSCHEMES];
extern const char *const resi_pl_format_names[RESI_PL_NFORMATS];

/* One proxy: offsets and lengths into an arena. */
typedef struct {
  uint32_t host, user, pass;
  uint32_t user_len, pass_len;
  uint16_t host_len, port;
  uint8_t scheme, flags;
} resi_pl_entry;

/* The first c in [s, end), or NULL: sixteen (SSE2) or eight bytes at a time
 * (short spans are the common case here, where a call to memchr costs more
 * than the search). */
static inline const char *resi_pl_find(const char *s, const char *end, char c) {
#ifdef __SSE2__
  const __m128i want = _mm_set1_epi8(c);
  for (; end - s >= 16; s += 16) { /* sixteen at a time where SSE2 is (every x86-64) */
    int m = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)s), want));
    if (m) return s + __builtin_ctz((unsigned)m);
  }
#endif
  const uint64_t ones = 0x0101010101010101u, pattern = ones * (unsigned char)c;
  while (end - s >= 8) {
    uint64_t w;
    __builtin_memcpy(&w, s, 8);
    w ^= pattern;
    if ((w - ones) & ~w & 0x8080808080808080u) break;
    s += 8;
  }
  for (; s < end; s++)
    if (*s == c) return s;
  return NULL;
}

/* ---- proxylist_format.c ---- */

/* Appends entry e (strings in arena) to out in format fmt, without a line
 * end. Returns 0, or -1 with why set when the format cannot carry the entry
 * (or memory ran out). */
int resi_pl_format(resi_buf *out, const char *arena, const resi_pl_entry *e, int fmt, char *why);

/* Writes s[0..n) (a rejected line, or a JSON object's text) to out with
 * everything that may be a credential masked, for list.errors: a text line
 * keeps its separators (whitespace, ':', '@', '/', '[', ']', '|'), a scheme
 * before "://" and a proxy type first on the line, and shows every other
 * field as "***"; a JSON object keeps its keys, its structure and the
 * values of "host", "port" and "scheme", and shows every other value as
 * "***". Writes at most cap bytes (3 * n + 2 is always enough) and
 * returns how many; a text line comes out as printable ASCII. */
size_t resi_pl_mask(const char *s, size_t n, char *out, size_t cap);

/* ---- proxylist_parse.c ---- */

/* Format number for a name ("list", "auto"...), or -1. */
int resi_pl_format_id(const char *name);
/* Scheme number for a name (case-insensitive; "socks" is socks5), or -1. */
int resi_pl_scheme_id(const char *s, size_t n);

/* Parses one line (without its line end) in format fmt (a text format or
 * AUTO); decoded strings are appended to arena. Returns 1 for an entry, 0
 * for a line that holds none (blank, comment), -1 for a rejected line with
 * why set. On -1 the arena is left as it was. */
int resi_pl_parse_line(const char *s, size_t n, int fmt, int default_scheme, resi_buf *arena,
                       resi_pl_entry *e, char *why);

/* Checks a host (bare IPv6 allowed when allow_v6) and appends it
 * lower-cased to arena; sets e->host, host_len and the IPv6 flag. A host
 * name that repeats the last one stored points at that copy instead while
 * its bytes are still there, below arena->len (so the bytes an entry
 * points at may be another entry's: an arena is only appended to, or cut
 * back to before a rejected line). Returns 0, or -1 with why set. */
int resi_pl_set_host(const char *s, size_t n, int allow_v6, resi_buf *arena, resi_pl_entry *e, char *why);

/* Parses a decimal port 1..65535; returns it, or -1 with why set. */
int resi_pl_port(const char *s, size_t n, char *why);

/* ---- proxylist_json.c ---- */

/* Called for every entry (why NULL) or rejected object (why set) that the
 * JSON reader finds; line is where the object starts, text/len its source. */
typedef int (*resi_pl_sink)(void *ud, const resi_pl_entry *e, long line, const char *why, const char *text,
                            size_t len);

/* Where the JSON reader is between chunks. */
typedef struct {
  int state;       /* see proxylist_json.c */
  long line;       /* line number of the next unread byte */
  int default_scheme;
  int wrapped;     /* inside {"proxies": [...]} */
} resi_pl_json;

/* Starts a JSON reader. */
void resi_pl_json_init(resi_pl_json *j, int default_scheme);

/* Reads what it can of s[0..n): every complete object goes to sink (its
 * strings appended to arena). Returns the bytes consumed: the caller keeps
 * the rest and passes it again, with more, next time. With final set, an
 * incomplete document is an error. Returns -1 on a syntax error (why set,
 * *err_line its line); the reader then stops. */
long resi_pl_json_feed(resi_pl_json *j, const char *s, size_t n, int final, resi_buf *arena,
                       resi_pl_sink sink, void *ud, char *why, long *err_line);

/* ---- proxylist_stream.c ---- */

/* Called for each line; return non-zero to stop (out of memory). */
typedef int (*resi_pl_line_fn)(void *ud, const char *s, size_t n, long line);

/* Splits text into lines across chunks. */
typedef struct {
  resi_buf carry; /* the unfinished last line of the previous chunk */
  long line;      /* number of the last line handed out */
  int skipping;   /* inside a line already reported as too long */
  int started;    /* past the first bytes (BOM check done) */
} resi_pl_lines;

/* Feeds a chunk (final: the input ends after it). Calls fn for every
 * complete line, with CR of CRLF and a leading UTF-8 BOM removed; a line
 * longer than RESI_PL_MAX_LINE is handed out as its first bytes with
 * n = RESI_PL_MAX_LINE + 1 so the caller reports it. Returns 0, or -1 when
 * fn stopped or memory ran out. */
int resi_pl_lines_feed(resi_pl_lines *ls, const char *s, size_t n, int final, resi_pl_line_fn fn, void *ud);

/* ---- the Lua binding: what its files share ---- */

/* A list (the userdata behind resi.proxylist.list): entries whose strings
 * are in one arena; its errors table is the userdata's user value 1. */
typedef struct {
  resi_buf arena;
  resi_pl_entry *e;
  size_t n, cap;
} resi_pl_list;

/* proxylist.c: checks a format name argument (def when absent; "auto" only
 * when allow_auto); raises naming the formats. */
int resi_pl_check_format(lua_State *L, int i, const char *def, int allow_auto);

/* proxylist.c: raises "out of memory" (after a failed allocation). */
int resi_pl_oom(lua_State *L);

/* proxylist_list.c: pushes a new empty list with an empty errors table. */
resi_pl_list *resi_pl_list_new(lua_State *L);

/* proxylist_list.c: asks for the 2 MiB-aligned part of [p, p + n) (4 MiB
 * or more) to be transparent huge pages. */
void resi_pl_huge_pages(void *p, size_t n);

/* proxylist_list.c: makes room for cap entries in all (a hint: nothing
 * happens when memory is short; 4 MiB or more come 2 MiB-aligned, in huge
 * pages). */
void resi_pl_list_reserve(resi_pl_list *l, size_t cap);

/* proxylist_list.c: appends an entry whose strings are in src (copied into
 * l's arena unless src is l's own arena). Returns 0 when memory or the
 * 4 GiB limit runs out. */
int resi_pl_list_push(resi_pl_list *l, const resi_pl_entry *e, const char *src);

/* proxylist_list.c: pushes the errors table of the list at idx. */
void resi_pl_list_errors(lua_State *L, int idx);

/* proxylist_list.c: the list argument at i (raises when it is not one). */
resi_pl_list *resi_pl_check_list(lua_State *L, int i);

/* proxylist_list.c: pushes entry e as a table {scheme, host, port, user, pass}. */
void resi_pl_push_entry(lua_State *L, const char *arena, const resi_pl_entry *e);

/* proxylist_view.c: registers the entry view class and adds entries to
 * core.methods (the core table on the top). */
void resi_pl_view_open(lua_State *L);

/* proxylist_list.c: registers the list class and adds the list functions
 * (pick, sample, slice, from) and core.methods to the table on the top. */
void resi_pl_list_open(lua_State *L);

/* proxylist_reader.c: registers the reader class and adds core.reader to
 * the table on the top. */
void resi_pl_reader_open(lua_State *L);

#endif
