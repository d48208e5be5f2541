/* host.h: the Lua state and event loop that one resi process runs. */
#ifndef RESI_HOST_H
#define RESI_HOST_H

#include <limits.h>

#include "resi.h"

/* What the command line asked the host to run as the main task. */
typedef enum {
  RESI_RUN_FILE,       /* a script file (target = path, "-" = stdin) */
  RESI_RUN_CODE,       /* a chunk given with -e (target = code) */
  RESI_RUN_SUBCOMMAND, /* a Lua command module resi.cli.<target> */
} resi_run_kind;

typedef struct {
  resi_run_kind kind;
  const char *target;
  int argc;    /* arguments after the script / chunk / subcommand */
  char **argv;
  const char *arg0; /* what arg[0] shows */
} resi_invocation;

typedef struct {
  lua_State *L;
  uv_loop_t loop;
  char lualib_dir[PATH_MAX]; /* the directory holding resi/init.lua */
  char cmod_dir[PATH_MAX];   /* where the on-demand C modules live */
} resi_host;

/* Finds the Lua library next to the executable (source tree or install). */
int resi_host_locate(resi_host *h);

/* Creates the loop and the Lua state with resi's modules registered. */
int resi_host_open(resi_host *h);

/* Runs an invocation to completion; returns the process exit status. */
int resi_host_run(resi_host *h, const resi_invocation *inv);

/* Closes every handle, the Lua state and the loop. */
void resi_host_close(resi_host *h);

/* Does a Lua command module resi/cli/<name>.lua exist? */
int resi_host_has_subcommand(const resi_host *h, const char *name);

/* Finds the subcommand nearest to word (a typo: at most two edits, or a
 * prefix), among builtins (NULL-terminated) and the Lua ones; writes it to
 * best and returns 1, or returns 0 when none is near. */
int resi_host_nearest_subcommand(const resi_host *h, const char *word, const char *const *builtins,
                                 char *best, size_t size);

/* Registers resi.core (timers, the drain step, clocks); defined in core.c. */
int luaopen_resi_core(lua_State *L);

/* Registers resi.json_core (exact integers, arrays); defined in json.c. */
int luaopen_resi_json_core(lua_State *L);

/* Registers resi.server_core (the HTTP server); defined in http_server.c. */
int luaopen_resi_server_core(lua_State *L);

/* Registers resi.proxylist_core (the proxy-list codec); defined in proxylist.c. */
int luaopen_resi_proxylist_core(lua_State *L);

/* Registers resi.proxy_proto_core (the sandbox gateways' SOCKS5 and proxy
 * request parsers); defined in proxy_proto_lua.c. */
int luaopen_resi_proxy_proto_core(lua_State *L);

/* Wraps luv's handle constructors (luv table at the stack top) so the
 * handles they make are remembered; defined in luv_handles.c. */
void resi_luv_track(lua_State *L);

/* Closes the luv handles still open and runs their close callbacks, while
 * the state they call into exists; defined in luv_handles.c. */
void resi_luv_close_handles(lua_State *L, uv_loop_t *loop);

/* Registers resi.fs_core (advisory file locks); defined in fs_lock.c. */
int luaopen_resi_fs_core(lua_State *L);

#endif
