/* main.c: the resi command line: parses the arguments, then hands a script,
 * a chunk or a subcommand to the host. Exit status: 0 success, 1 a script
 * error, 2 a usage error. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

static const char usage_text[] =
    "usage: resi [FILE [ARGS...]]     run a script (FILE - reads it from stdin;\n"
    "                                 no FILE on a terminal: the REPL)\n"
    "       resi run FILE [ARGS...]   the same, explicitly\n"
    "       resi run NAME [ARGS...]   a bundled script or example, e.g. resi run rotate --help\n"
    "       resi scripts [NAME]       list the bundled scripts and examples (NAME: its path)\n"
    "       resi -e CODE [ARGS...]    run a chunk of Lua\n"
    "       resi repl [--sim] [-e CODE] [FILE]\n"
    "                                 the REPL: every entry a task (FILE or CODE first)\n"
    "       resi sim [OPTIONS]        the provider sandbox (UnknownProxies, Oxylabs, ResiFactory)\n"
    "       resi jobs FILE [OPTIONS]  the scheduled-jobs daemon (check|list|explain|run|history|...)\n"
    "       resi proxies convert|dedupe|sticky|refresh|check [OPTIONS] [FILE...]\n"
    "                                 proxy-list tools\n"
    "       resi notify test TARGET   send a test notification (webhook|slack|discord|telegram|email)\n"
    "       resi up tokens|token|create|modify|delete [--json]\n"
    "                                 UnknownProxies tokens\n"
    "       resi oxy users|stats|create|delete|client-stats [--json]\n"
    "                                 Oxylabs sub-users\n"
    "       resi rf balance|usage|pools|me|generate [--json]\n"
    "                                 ResiFactory balance and proxy generation\n"
    "       resi lsp-setup [DIR]      write DIR/.luarc.json for lua-language-server (editor completion)\n"
    "       resi test [BUSTED ARGS]   run busted specs inside resi\n"
    "       resi version              print the versions of resi, Lua, libuv and libcurl\n"
    "       resi COMMAND --help       help on one command\n"
    "\n"
    "Exit status: 0 success, 1 a script error (traceback on stderr), 2 a usage error.\n"
    "Scripts may start with #!/usr/bin/env resi.\n";

static const char run_help[] =
    "usage: resi run FILE [ARGS...]\n"
    "       resi run NAME [ARGS...]\n"
    "       resi FILE [ARGS...]\n"
    "\n"
    "Runs FILE as the main task. ARGS are in resi.args (and the global arg,\n"
    "with arg[0] the script). The process exits when the main task and every\n"
    "task it started have finished. FILE - reads the script from stdin.\n"
    "\n"
    "NAME, a word with no slash that is not a file in the working directory,\n"
    "runs a bundled script: scripts/NAME.lua, else examples/NAME.lua, from\n"
    "resi's share directory (PREFIX/share/resi; the source tree's scripts/\n"
    "and examples/ for a ./resi built there). resi scripts lists them, and\n"
    "resi run NAME --help shows a script's options (resi run rotate --help).\n";

static const char eval_help[] =
    "usage: resi -e CODE [ARGS...]\n"
    "\n"
    "Runs CODE as the main task, like a script file.\n";

static const char version_help[] =
    "usage: resi version\n"
    "\n"
    "Prints resi's version and the versions of the libraries it runs on.\n";

/* Prints a usage error and returns the usage exit status. */
static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "resi: ");
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\n\n%s", usage_text);
  return 2;
}

static int is_help(const char *a) {
  return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* The commands main.c handles itself (the others are lualib/resi/cli/NAME.lua). */
static const char *const builtin_commands[] = {"run", "version", "help", NULL};

/* The version line: resi, Lua and libuv from here, libcurl from the HTTP
 * module (loaded only for this, so other start-ups stay free of it). */
static const char version_chunk[] =
    "print(... .. ', libcurl ' .. require('resi.http').curl_version .. ')')";

/* Sets inv up to print the version line of resi and its libraries. */
static int print_version(resi_invocation *inv) {
  static char line[128];
  static char *args[1];
  snprintf(line, sizeof line, "resi %s (%s, libuv %s", RESI_VERSION, LUA_RELEASE, uv_version_string());
  args[0] = line;
  inv->kind = RESI_RUN_CODE, inv->target = version_chunk, inv->arg0 = "version";
  inv->argc = 1, inv->argv = args;
  return -1;
}

/* Finds the bundled script name (a word, ".lua" optional): scripts/NAME.lua,
 * else examples/NAME.lua, beside the Lua library (the source tree's, or
 * PREFIX/share/resi's). Writes its real path to out and returns 1, or 0. */
static int find_bundled(const resi_host *h, const char *name, char *out) {
  static const char *const dirs[] = {"scripts", "examples", NULL};
  size_t len = strlen(name);
  if (len == 0 || len > 64) return 0;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
      return 0;
  if (name[0] == '.' || name[0] == '-') return 0;
  const char *ext = len > 4 && strcmp(name + len - 4, ".lua") == 0 ? "" : ".lua";
  for (int i = 0; dirs[i]; i++) {
    char probe[PATH_MAX + 96];
    snprintf(probe, sizeof probe, "%s/../%s/%s%s", h->lualib_dir, dirs[i], name, ext);
    struct stat st;
    if (stat(probe, &st) == 0 && S_ISREG(st.st_mode) && realpath(probe, out)) return 1;
  }
  return 0;
}

/* Does a name look like a mistyped command rather than a script path? */
static int looks_like_command(const char *a) {
  if (access(a, F_OK) == 0 || !(a[0] >= 'a' && a[0] <= 'z')) return 0; /* commands start with a letter ("-" is stdin) */
  for (const char *p = a; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || *p == '-' || *p == '_')) return 0;
  return 1;
}

/* A name that is neither a file nor a command: a usage error that suggests
 * the nearest command, or -1 to let the host report the missing file. */
static int unknown_command(const resi_host *h, const char *a) {
  char best[64], bundled[PATH_MAX];
  if (looks_like_command(a) && find_bundled(h, a, bundled)) {
    fprintf(stderr, "resi: '%s' is not a command or a script file; did you mean 'resi run %s'?\n"
                    "(a bundled script: see resi scripts)\n", a, a);
    return 2;
  }
  if (!looks_like_command(a) || !resi_host_nearest_subcommand(h, a, builtin_commands, best, sizeof best))
    return -1;
  fprintf(stderr, "resi: '%s' is not a command or a script file; did you mean 'resi %s'?\n"
                  "(see resi --help)\n", a, best);
  return 2;
}

/* Lets one process hold many sockets (1,000 transfers in flight). */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* Fills inv from argv; returns -1 to run it, or an exit status. */
static int parse_args(resi_host *h, int argc, char **argv, resi_invocation *inv) {
  inv->arg0 = "resi";
  if (argc < 2) {
    if (isatty(STDIN_FILENO)) {
      if (resi_host_has_subcommand(h, "repl")) { /* no FILE on a terminal: the REPL */
        inv->kind = RESI_RUN_SUBCOMMAND, inv->target = "repl", inv->arg0 = "repl";
        inv->argc = 0, inv->argv = argv + argc;
        return -1;
      }
      fputs(usage_text, stdout);
      return 0;
    }
    inv->kind = RESI_RUN_FILE, inv->target = "-", inv->arg0 = "-";
    inv->argc = 0, inv->argv = argv + argc;
    return -1;
  }
  const char *a = argv[1];
  if (is_help(a) || strcmp(a, "help") == 0) {
    fputs(usage_text, stdout);
    return 0;
  }
  if (strcmp(a, "version") == 0 || strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
    if (argc > 2 && is_help(argv[2])) return fputs(version_help, stdout), 0;
    if (argc > 2) return usage_error("version takes no arguments (got '%s')", argv[2]);
    return print_version(inv);
  }
  if (strcmp(a, "-e") == 0) {
    if (argc < 3) return usage_error("%s needs a chunk of code", "-e");
    if (is_help(argv[2])) return fputs(eval_help, stdout), 0;
    inv->kind = RESI_RUN_CODE, inv->target = argv[2], inv->arg0 = "-e";
    inv->argc = argc - 3, inv->argv = argv + 3;
    return -1;
  }
  if (strcmp(a, "run") == 0) {
    if (argc < 3) return usage_error("%s needs a script file", "run");
    if (is_help(argv[2])) return fputs(run_help, stdout), 0;
    a = argv[2], argv++, argc--;
    static char bundled[PATH_MAX];
    if (!strchr(a, '/') && access(a, F_OK) != 0 && find_bundled(h, a, bundled)) a = bundled;
  } else if (a[0] == '-' && a[1] != '\0') {
    return usage_error("unknown option '%s'", a);
  } else if (resi_host_has_subcommand(h, a)) {
    inv->kind = RESI_RUN_SUBCOMMAND, inv->target = a, inv->arg0 = a;
    inv->argc = argc - 2, inv->argv = argv + 2;
    return -1;
  }
  int unknown = unknown_command(h, a);
  if (unknown >= 0) return unknown;
  inv->kind = RESI_RUN_FILE, inv->target = a, inv->arg0 = a;
  inv->argc = argc - 2, inv->argv = argv + 2;
  return -1;
}

int main(int argc, char **argv) {
  resi_host host = {0};
  resi_invocation inv = {0};
  if (resi_host_locate(&host) != 0) return 1;
  int status = parse_args(&host, argc, argv, &inv);
  if (status >= 0) return status;
  signal(SIGPIPE, SIG_IGN); /* a closed socket is an error value, not a signal */
  raise_fd_limit();
  if (resi_host_open(&host) != 0) return 1;
  status = resi_host_run(&host, &inv);
  fflush(stdout);
  resi_host_close(&host);
  return status;
}
