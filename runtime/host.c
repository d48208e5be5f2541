/* host.c: one Lua state, one libuv loop, and the main task that runs on them.
 *
 * The host sets the state up (library paths, preloaded C modules, luv bound
 * to our loop), hands the main chunk to the Lua scheduler (resi.task), runs
 * the loop until nothing is pending, and tears everything down in order. */
#include "host.h"

#include "bytecode.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lualib.h>
#include <luv/luv.h>

#ifndef RESI_LUALIB_DIR
#define RESI_LUALIB_DIR "/usr/local/share/resi/lualib"
#endif
#ifndef RESI_CMOD_DIR
#define RESI_CMOD_DIR "/usr/local/lib/resi"
#endif

/* Is path an existing regular file? */
static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Replaces path (PATH_MAX bytes) by its canonical form when it resolves:
 * "/usr/bin/../share/resi/lualib" is read as "/usr/share/resi/lualib", the
 * name the installed bytecode's chunks carry (bytecode.c). */
static void canonical(char *path) {
  char real[PATH_MAX];
  if (realpath(path, real) != NULL) memcpy(path, real, strlen(real) + 1);
}

/* Tries one candidate layout: lualib at lua_rel, C modules at cmod_rel,
 * both relative to dir. */
static int try_layout(resi_host *h, const char *dir, const char *lua_rel, const char *cmod_rel) {
  char probe[PATH_MAX + 64];
  snprintf(probe, sizeof probe, "%s%s/resi/init.lua", dir, lua_rel);
  if (!file_exists(probe)) return 0;
  snprintf(h->lualib_dir, sizeof h->lualib_dir, "%s%s", dir, lua_rel);
  snprintf(h->cmod_dir, sizeof h->cmod_dir, "%s%s", dir, cmod_rel);
  canonical(h->lualib_dir);
  canonical(h->cmod_dir);
  return 1;
}

int resi_host_locate(resi_host *h) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    /* the source tree: ./resi beside lualib/ and build/cmod/ */
    if (try_layout(h, exe, "/lualib", "/build/cmod")) return 0;
    /* an install: PREFIX/bin/resi, PREFIX/share/resi/lualib, PREFIX/lib/resi */
    if (try_layout(h, exe, "/../share/resi/lualib", "/../lib/resi")) return 0;
  }
  /* a build elsewhere (the sanitizer build): the paths it was built for */
  if (try_layout(h, "", RESI_LUALIB_DIR, RESI_CMOD_DIR)) return 0;
  fprintf(stderr, "resi: cannot find the resi Lua library (looked beside %s and in %s)\n",
          n > 0 ? exe : "the executable", RESI_LUALIB_DIR);
  return -1;
}

int resi_host_has_subcommand(const resi_host *h, const char *name) {
  char probe[PATH_MAX + 128];
  if (!(*name >= 'a' && *name <= 'z')) return 0; /* not an option, not a path */
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == '-')) return 0; /* lsp-setup */
  snprintf(probe, sizeof probe, "%s/resi/cli/%s.lua", h->lualib_dir, name);
  return file_exists(probe);
}

/* Levenshtein distance between two short words (at most 63 characters). */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[64];
  if (la > 63 || lb > 63) return (size_t)-1;
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = up, row[j] = best;
    }
  }
  return row[lb];
}

/* How near word is to a command: its edit distance, or 0 when the two
 * share their first four letters (`proxy` for `proxies`). */
static size_t command_distance(const char *word, const char *command) {
  size_t same = 0;
  while (word[same] && word[same] == command[same]) same++;
  if (same >= 4) return 0;
  return edit_distance(word, command);
}

/* Keeps command in best when it is nearer to word than what best holds. */
static void consider(const char *word, const char *command, char *best, size_t size, size_t *dist) {
  size_t d = command_distance(word, command);
  if (d < *dist) *dist = d, snprintf(best, size, "%s", command);
}

int resi_host_nearest_subcommand(const resi_host *h, const char *word, const char *const *builtins,
                                 char *best, size_t size) {
  size_t dist = 3; /* more than two edits away is not a typo */
  char dir[PATH_MAX + 16];
  best[0] = '\0';
  for (const char *const *b = builtins; *b; b++) consider(word, *b, best, size, &dist);
  snprintf(dir, sizeof dir, "%s/resi/cli", h->lualib_dir);
  DIR *d = opendir(dir);
  if (d == NULL) return best[0] != '\0';
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    char name[64];
    size_t n = strlen(e->d_name);
    if (n < 5 || n - 4 >= sizeof name || strcmp(e->d_name + n - 4, ".lua") != 0) continue;
    memcpy(name, e->d_name, n - 4), name[n - 4] = '\0';
    consider(word, name, best, size, &dist);
  }
  closedir(d);
  return best[0] != '\0';
}

/* Reports an error raised outside any task (a luv callback, start-up). */
static void report_error(lua_State *L, const char *where) {
  /* stack: err (text made by resi_msghandler, unless the handler failed) */
  fprintf(stderr, "resi: %s: %s\n", where, luaL_tolstring(L, -1, NULL)); /* stack: err, text */
  lua_pop(L, 2);
  resi_add_failure(L);
}

/* luv's callback runner: a protected call with a traceback; an error is
 * reported and makes the process exit non-zero, but does not stop the loop. */
static int luv_callback_pcall(lua_State *L, int nargs, int nresults, int flags) {
  (void)flags;
  int base = lua_gettop(L) - nargs; /* the function's index */
  lua_pushcfunction(L, resi_msghandler);
  lua_insert(L, base); /* stack: handler, fn, args.. */
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (status != LUA_OK) {
    report_error(L, "error in a resi.uv callback");
    return -status;
  }
  return nresults == LUA_MULTRET ? lua_gettop(L) - base + 1 : nresults;
}

/* resi.uv.walk: not offered (see open_luv). */
static int luv_walk_unavailable(lua_State *L) {
  return luaL_error(L, "resi.uv.walk is unavailable: the loop also holds resi's own handles");
}

/* package.preload.luv: luv bound to the host's loop, so require "luv"
 * and resi.uv never create a second loop. */
static int open_luv(lua_State *L) {
  lua_State *M = resi_main_state(L);
  luv_set_loop(L, resi_loop(L));
  luv_set_callback(L, luv_callback_pcall);
  luaopen_luv(L); /* stack: luv */
  /* callbacks must run on the main thread, whichever task required luv */
  luv_context(L)->L = M;
  /* uv.walk would hand luv's walker the host's own handles, which are not
   * luv's; it asserts on them, so it is replaced by a clear error */
  lua_pushcfunction(L, luv_walk_unavailable);
  lua_setfield(L, -2, "walk"); /* stack: luv */
  resi_luv_track(L);            /* closed at exit: see luv_handles.c */
  return 1;
}

/* The C modules linked into the binary, preloaded by name. */
static const luaL_Reg preloads[] = {
    {"resi.core", luaopen_resi_core},
    {"resi.json_core", luaopen_resi_json_core},
    {"resi.server_core", luaopen_resi_server_core},
    {"resi.proxylist_core", luaopen_resi_proxylist_core},
    {"resi.fs_core", luaopen_resi_fs_core},
    {"resi.proxy_proto_core", luaopen_resi_proxy_proto_core},
    {"luv", open_luv},
    {NULL, NULL},
};

/* Sets package.path/cpath so resi's library comes first, then Debian's
 * (and preloads resi's linked C modules). */
static void set_paths(resi_host *h) {
  lua_State *L = h->L;
  lua_getglobal(L, "package"); /* stack: package */
  lua_getfield(L, -1, "path"); /* stack: package, path */
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", h->lualib_dir, h->lualib_dir,
                  lua_tostring(L, -1)); /* stack: package, path, newpath */
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  lua_getfield(L, -1, "cpath"); /* stack: package, cpath */
  lua_pushfstring(L, "%s/?.so;%s", h->cmod_dir, lua_tostring(L, -1));
  lua_setfield(L, -3, "cpath");
  lua_pop(L, 1);
  lua_getfield(L, -1, "preload"); /* stack: package, preload */
  luaL_setfuncs(L, preloads, 0);
  lua_pop(L, 1);
  /* resi's compiled modules go before the source searcher (second, after preload) */
  lua_getfield(L, -1, "searchers"); /* stack: package, searchers */
  for (lua_Integer i = (lua_Integer)lua_rawlen(L, -1); i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  char luac_dir[PATH_MAX + 8];
  snprintf(luac_dir, sizeof luac_dir, "%s/luac", h->cmod_dir);
  resi_push_bytecode_searcher(L, h->lualib_dir, luac_dir); /* stack: package, searchers, searcher */
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2); /* stack: (empty) */
}

/* Seeds math.random from the kernel's entropy: Lua's own seed mixes the
 * time in seconds with an address, which repeats across processes started
 * in the same second when addresses are not randomized (sanitizer builds),
 * and scripts draw usernames and ids from it. */
static void seed_random(lua_State *L) {
  lua_Integer seed[2] = {0, 0};
  if (!resi_random_bytes(seed, sizeof seed)) {
    seed[0] = (lua_Integer)time(NULL) ^ (lua_Integer)getpid();
    seed[1] = (lua_Integer)(uintptr_t)&seed;
  }
  lua_getglobal(L, "math");
  lua_getfield(L, -1, "randomseed");
  lua_pushinteger(L, seed[0]);
  lua_pushinteger(L, seed[1]); /* stack: math, randomseed, a, b */
  lua_call(L, 2, 0);
  lua_pop(L, 1);
}

int resi_host_open(resi_host *h) {
  int rc = uv_loop_init(&h->loop);
  if (rc < 0) {
    fprintf(stderr, "resi: cannot start the event loop: %s\n", uv_strerror(rc));
    return -1;
  }
  h->L = luaL_newstate();
  if (h->L == NULL) {
    fprintf(stderr, "resi: cannot create a Lua state: out of memory\n");
    return -1;
  }
  luaL_openlibs(h->L);
  seed_random(h->L);
  lua_pushlightuserdata(h->L, &h->loop);
  lua_setfield(h->L, LUA_REGISTRYINDEX, RESI_REG_LOOP);
  set_paths(h);
  return 0;
}

/* Pushes the table that becomes the global arg and resi.args. */
static void push_args(lua_State *L, const resi_invocation *inv) {
  lua_createtable(L, inv->argc, 1); /* stack: args */
  lua_pushstring(L, inv->arg0);
  lua_rawseti(L, -2, 0);
  for (int i = 0; i < inv->argc; i++) {
    lua_pushstring(L, inv->argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Reads all of stdin into a Lua string (for `resi -` and piped scripts). */
static int load_stdin(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) luaL_addlstring(&b, chunk, n);
  luaL_pushresult(&b); /* stack: source */
  size_t len;
  const char *src = lua_tolstring(L, -1, &len);
  if (len > 0 && src[0] == '#') { /* skip a #! line like luaL_loadfile does */
    const char *nl = memchr(src, '\n', len);
    size_t skip = nl ? (size_t)(nl - src) : len;
    src += skip, len -= skip;
  }
  int status = luaL_loadbuffer(L, src, len, "=stdin"); /* stack: source, chunk|err */
  lua_remove(L, -2);
  return status;
}

/* Loads the main chunk; on failure leaves a message and returns the exit status. */
static int load_main(lua_State *L, const resi_invocation *inv) {
  int status;
  switch (inv->kind) {
  case RESI_RUN_CODE:
    status = luaL_loadbuffer(L, inv->target, strlen(inv->target), "=(command line)");
    break;
  case RESI_RUN_SUBCOMMAND:
    lua_getglobal(L, "require"); /* stack: require */
    lua_pushfstring(L, "resi.cli.%s", inv->target);
    status = lua_pcall(L, 1, 1, 0); /* stack: command function | err */
    break;
  default:
    if (strcmp(inv->target, "-") == 0) {
      status = load_stdin(L);
    } else {
      status = luaL_loadfile(L, inv->target);
      if (status == LUA_ERRFILE) {
        fprintf(stderr, "resi: cannot open script '%s': %s\n", inv->target, strerror(errno));
        lua_pop(L, 1);
        return 2;
      }
    }
  }
  if (status != LUA_OK) {
    fprintf(stderr, "resi: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

int resi_host_run(resi_host *h, const resi_invocation *inv) {
  lua_State *L = h->L;
  lua_pushcfunction(L, resi_msghandler); /* stack: handler */
  int handler = lua_gettop(L);

  /* the scheduler: resi.task.main(chunk, args) -> starts the main task */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "resi.task"); /* stack: handler, require, "resi.task" */
  if (lua_pcall(L, 1, 1, handler) != LUA_OK) {
    fprintf(stderr, "resi: cannot load the scheduler: %s\n", lua_tostring(L, -1));
    lua_settop(L, 0);
    return 1;
  }
  /* stack: handler, task */
  int rc = load_main(L, inv); /* stack: handler, task, chunk */
  if (rc != 0) {
    lua_settop(L, 0);
    return rc;
  }
  push_args(L, inv); /* stack: handler, task, chunk, args */
  lua_pushvalue(L, -1);
  lua_setglobal(L, "arg");
  lua_getfield(L, -3, "start_main"); /* stack: handler, task, chunk, args, start_main */
  lua_insert(L, -3);                 /* stack: handler, task, start_main, chunk, args */
  if (lua_pcall(L, 2, 0, handler) != LUA_OK) {
    fprintf(stderr, "resi: %s\n", lua_tostring(L, -1));
    lua_settop(L, 0);
    return 1;
  }
  /* stack: handler, task */
  uv_run(&h->loop, UV_RUN_DEFAULT);

  lua_getfield(L, -1, "finish"); /* stack: handler, task, finish */
  int status = 1;
  if (lua_pcall(L, 0, 1, handler) == LUA_OK) {
    status = (int)lua_tointeger(L, -1);
  } else {
    fprintf(stderr, "resi: %s\n", lua_tostring(L, -1));
  }
  if (resi_failures(L) > 0 && status == 0) status = 1;
  lua_settop(L, 0);
  return status;
}

/* uv_walk callback: closes every handle still open at shutdown. */
static void close_walk_cb(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle)) uv_close(handle, NULL);
}

void resi_host_close(resi_host *h) {
  if (h->L) {
    resi_luv_close_handles(h->L, &h->loop);
    /* modules release their C resources (curl handles, timers) in __gc */
    lua_close(h->L);
    h->L = NULL;
  }
  uv_walk(&h->loop, close_walk_cb, NULL);
  while (uv_loop_close(&h->loop) == UV_EBUSY) uv_run(&h->loop, UV_RUN_NOWAIT);
}
