/* lineedit.c: resi.lineedit_core, line editing for the REPL with libedit's
 * readline-compatible callback interface, driven by the host's libuv loop
 * (a uv_poll_t on the terminal calls rl_callback_read_char), plus the SIGINT
 * machinery that interrupts a runaway entry.
 *
 * Built as an on-demand module (build/cmod/resi/lineedit_core.so, linking
 * Debian's libedit) so that scripts never pay for libedit at start-up.
 *
 * Interface (Lua):
 *   le.isatty(fd) -> boolean
 *   le.open{fd_in = 0, fd_out = 1} -> ed | nil, message, code
 *       One editor at a time ("busy" otherwise); fd_in must be a terminal
 *       ("notty"). Sets LC_CTYPE from the environment (C.UTF-8 when that is
 *       not UTF-8), so UTF-8 input edits as characters. Installs SIGTERM and
 *       SIGHUP handlers that restore the terminal and then die of the signal
 *       with the default action (the previous handlers come back at close);
 *       a luv signal handler for those signals replaces them, and must then
 *       call ed:stop() itself. Re-opening starts with an empty history.
 *   ed:start(prompt, on_line)
 *       Shows prompt and edits a line without blocking the loop. on_line(line)
 *       is called (lua_pcall on the main state; errors go to stderr) with the
 *       accepted line (multi-line history entries come back whole, with "\n"),
 *       or nil on Ctrl-D / end of input (a newline is written first). After
 *       on_line returns, the next prompt is shown at once, unless on_line
 *       called ed:stop() (then call ed:start again when the entry is done).
 *       on_line must not wait: start a task for the entry.
 *   ed:set_prompt(p)     the prompt for the next line (redrawn now if shown)
 *   ed:print(text)       writes text above the prompt and the partial input,
 *                        which are redrawn below it; a missing final newline is
 *                        added. When no prompt is shown it just writes text.
 *   ed:clear_line()      drops the partial input, writes "^C" and a new prompt
 *   ed:line()            the text being edited ("" on an empty line), read from
 *                        libedit's own buffer (el_line, through the sync key
 *                        below); nil when no prompt is shown
 *   ed:typed()           characters read from the terminal since the prompt
 *                        was shown or the line cleared (keys count: a typed
 *                        and then deleted character still counts)
 *   ed:history_add(entry)          adds one entry (in memory only)
 *   ed:history_load(entries)       replaces the history with an array of entries
 *   ed:set_completer(fn|nil)
 *       Tab calls fn(text, line, start, stop) -> array of candidates, each the
 *       full replacement for text; line:sub(start, stop) == text (1-based byte
 *       offsets). Nothing is appended to a sole candidate. fn runs only on Tab.
 *       Word breaks: space, tab, newline and " ' ` @ $ > < = ; | & { ( , ) } [ ]
 *       + - * / % ^ # ~ ! (not "." nor ":", so `rf:ba` and `resi.http.ge` are
 *       one word). A libedit limitation: line is cut short when it holds
 *       multi-byte characters.
 *   ed:resize()          after SIGWINCH (from a luv signal handler)
 *   ed:stop()            removes the prompt, restores the terminal (cooked
 *                        mode, echo) and writes a newline if a prompt was shown
 *   ed:close()           stop, then release the editor (also __gc, and the
 *                        terminal is restored at exit() too)
 *   le.on_interrupt(fn|nil)
 *       fn(count, hooked) runs on the loop after SIGINT (Ctrl-C); count is the
 *       number of SIGINTs since the last call, hooked is true when one of them
 *       hooked an armed coroutine (see arm_interrupt: that Ctrl-C already
 *       interrupted the entry, which may have finished before fn runs). The first on_interrupt or
 *       arm_interrupt installs resi's own SIGINT handler for the rest of the
 *       process: do NOT also watch SIGINT with luv (resi.uv.new_signal), which
 *       would replace it. Its uv_async handle never keeps the loop alive.
 *   le.arm_interrupt(co|nil)
 *       While co is armed, SIGINT also sets a count hook on co (as lua.c's
 *       laction does) that raises "interrupted" inside it: a `while true do
 *       end` in the entry's task stops. If co is suspended, the hook fires
 *       when it next runs. nil disarms and removes a hook not yet fired.
 *
 * libedit quirks met here (Debian libedit 3.1-20221030): the callback
 * interface leaves the editor in buffered mode after a line, so the handler
 * is re-installed for every line (else the next rl_callback_read_char blocks);
 * rl_redisplay pushes ^R, which rl_initialize binds to incremental search, so
 * redraws use rl_forced_update_display from the start of the input; rl_point
 * is only refreshed inside bound functions, so a private key (^^) is pushed
 * and processed to read it; completion uses rl_basic_word_break_characters.
 * Input is read from a separate open of the terminal device, non-blocking,
 * through rl_getc_function (decoding UTF-8 here), so the loop never blocks on
 * a half-typed key and fd 0 is never left non-blocking for the shell. */
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include <editline/readline.h>

#include "resi.h"

#define EDITOR_MT "resi.lineedit.editor"
#define MODULE_MT "resi.lineedit.module"
#define SYNC_KEY 0x1e /* ^^: bound to a function that only refreshes rl_point */
#define MAX_CANDIDATES 4096

/* The one editor: libedit's readline emulation is a single global editor. */
typedef struct {
  lua_State *L;       /* the main thread */
  uv_poll_t *poll;    /* watches tty_fd; freed in its close callback */
  int fd_in, fd_out;
  int tty_fd;         /* our own open of the terminal (non-blocking) */
  FILE *in, *out;     /* rl_instream, rl_outstream (dups of fd_in, fd_out) */
  struct termios saved; /* the terminal as le.open found it */
  int open;
  int started;   /* the Lua side wants a prompt */
  int installed; /* libedit's handler is installed: prompt shown, raw mode */
  int in_line;   /* on_line is running */
  int on_prompt; /* the cursor is on a prompt line: stop ends it with "\n" */
  int polling;
  int eof;       /* tty_fd reached end of input or failed */
  int typed;     /* characters read since the prompt was shown or cleared */
  int on_line_ref, completer_ref;
  char *prompt;
  unsigned char ibuf[512]; /* bytes read from the terminal, not yet decoded */
  size_t ilen, ioff;
  char **cands; /* completion candidates of the current Tab */
  int ncands, next_cand;
} editor;

static editor ed = {.tty_fd = -1, .on_line_ref = LUA_NOREF, .completer_ref = LUA_NOREF};

/* The interrupt machinery (process-wide, set up once). */
static uv_async_t *intr_async;
static lua_State *volatile intr_co; /* the armed coroutine, or NULL */
static volatile sig_atomic_t intr_count, intr_hooked;
static int intr_co_ref = LUA_NOREF, intr_fn_ref = LUA_NOREF;
static lua_State *intr_L;
static int intr_installed;
static struct sigaction old_int, old_term, old_hup;
static volatile sig_atomic_t term_fd = -1, term_out = -1, term_saved_ok, term_on_prompt;
static struct termios term_saved; /* a copy for the signal handlers */

/* ---- output and terminal state ---- */

/* Writes n bytes to the terminal through libedit's stream. */
static void out_write(const char *s, size_t n) {
  if (ed.out == NULL) return;
  fwrite(s, 1, n, ed.out);
}

/* Writes a NUL-terminated string to the terminal. */
static void out_puts(const char *s) { out_write(s, strlen(s)); }

/* Restores the terminal as le.open found it (cooked mode, echo). */
static void restore_terminal(void) {
  if (ed.tty_fd >= 0) tcsetattr(ed.tty_fd, TCSADRAIN, &ed.saved);
}

/* Ends a prompt line left on the screen with a newline. */
static void end_prompt_line(void) {
  if (!ed.on_prompt) return;
  out_puts("\r\n");
  if (ed.out) fflush(ed.out);
  ed.on_prompt = term_on_prompt = 0;
}

/* SIGTERM/SIGHUP: restore the terminal, then die of the signal. */
static void on_fatal_signal(int sig) {
  if (term_fd >= 0 && term_saved_ok) tcsetattr(term_fd, TCSANOW, &term_saved);
  if (term_on_prompt && term_out >= 0) {
    ssize_t w = write(term_out, "\r\n", 2);
    (void)w;
  }
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  raise(sig);
}

/* atexit: a process leaving through exit() gets its terminal back. */
static void restore_at_exit(void) {
  if (!ed.open) return;
  if (ed.installed) rl_callback_handler_remove();
  ed.installed = 0;
  end_prompt_line();
  restore_terminal();
}

/* ---- input: non-blocking reads, UTF-8 decoded for libedit ---- */

/* Reads what the terminal has into ibuf after the bytes kept; 0 when none. */
static int fill_input(void) {
  if (ed.ioff > 0) {
    memmove(ed.ibuf, ed.ibuf + ed.ioff, ed.ilen - ed.ioff);
    ed.ilen -= ed.ioff, ed.ioff = 0;
  }
  if (ed.ilen == sizeof ed.ibuf) return 1;
  ssize_t n = read(ed.tty_fd, ed.ibuf + ed.ilen, sizeof ed.ibuf - ed.ilen);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) ed.eof = 1;
  if (n <= 0) return 0;
  ed.ilen += (size_t)n;
  return 1;
}

/* The length of the UTF-8 sequence a lead byte starts (1 for invalid bytes). */
static size_t utf8_len(unsigned char c) {
  return c < 0xC2 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 1;
}

/* rl_getc_function: the next character (a code point), or -1 when none is
 * there yet (libedit then returns from rl_callback_read_char at once). */
static int read_tty_char(FILE *unused) {
  (void)unused;
  if (ed.ioff == ed.ilen && !fill_input()) return -1;
  unsigned char c = ed.ibuf[ed.ioff];
  size_t need = utf8_len(c);
  if (ed.ilen - ed.ioff < need && !(fill_input() && ed.ilen - ed.ioff >= need))
    return -1; /* the rest of the character comes with the next read */
  mbstate_t st;
  memset(&st, 0, sizeof st);
  wchar_t wc;
  size_t r = mbrtowc(&wc, (const char *)ed.ibuf + ed.ioff, need, &st);
  if (r == (size_t)-1 || r == (size_t)-2 || r == 0) {
    ed.ioff++, ed.typed++;
    return c < 0x80 ? c : 0xFFFD;
  }
  ed.ioff += r;
  ed.typed++;
  return (int)wc;
}

/* ---- calling Lua ---- */

/* Calls the function below the nargs arguments at the top of L (protected,
 * with resi's message handler); an error goes to stderr and counts as a
 * failure of the process, and nresults nils stand for the results. */
static void call_lua(lua_State *L, int nargs, int nresults, const char *what) {
  int base = lua_gettop(L) - nargs; /* the function's index */
  lua_pushcfunction(L, resi_msghandler);
  lua_insert(L, base); /* stack: handler, fn, args.. */
  if (lua_pcall(L, nargs, nresults, base) != LUA_OK) {
    fprintf(stderr, "resi: error in the line editor's %s: %s\n", what, lua_tostring(L, -1));
    lua_pop(L, 1);
    resi_add_failure(L);
    for (int i = 0; i < nresults; i++) lua_pushnil(L);
  }
  lua_remove(L, base); /* stack: results.. */
}

/* ---- where the cursor is ---- */

/* Bound to SYNC_KEY: does nothing; libedit's wrapper of bound functions
 * refreshes rl_point, rl_end and rl_line_buffer before calling it. */
static int sync_key(int count, int key) {
  (void)count, (void)key;
  return 0;
}

/* Brings rl_point and rl_end up to date with the line being edited: pushes
 * SYNC_KEY and lets libedit process it (nothing is read from the terminal). */
static void sync_line(void) {
  rl_insert(1, SYNC_KEY);
  rl_callback_read_char();
}

/* Display columns of the character at s (n bytes left); sets *len. */
static int char_width(const char *s, size_t n, size_t *len) {
  mbstate_t st;
  memset(&st, 0, sizeof st);
  wchar_t wc;
  size_t r = mbrtowc(&wc, s, n, &st);
  if (r == (size_t)-1 || r == (size_t)-2 || r == 0) {
    *len = 1;
    return 1;
  }
  *len = r;
  if (wc < 0x20 || wc == 0x7f) return 2; /* libedit shows ^X */
  int w = wcwidth(wc);
  return w < 0 ? 1 : w;
}

/* Advances a screen position (row, col) over n display columns. */
static void advance(int *row, int *col, int w, int cols) {
  if (*col + w > cols) (*row)++, *col = 0;
  *col += w;
  if (*col >= cols) (*row)++, *col = 0;
}

/* Advances (row, col) over the prompt, skipping escape sequences and the
 * RL_PROMPT_START_IGNORE..END_IGNORE spans (they take no columns). */
static void measure_prompt(const char *p, int *row, int *col, int cols) {
  size_t n = strlen(p), i = 0, len;
  while (i < n) {
    unsigned char c = (unsigned char)p[i];
    if (c == RL_PROMPT_START_IGNORE) {
      const char *end = strchr(p + i, RL_PROMPT_END_IGNORE);
      i = end ? (size_t)(end - p) + 1 : n;
    } else if (c == 0x1b && p[i + 1] == '[') {
      i += 2;
      while (i < n && !((unsigned char)p[i] >= 0x40 && (unsigned char)p[i] <= 0x7e)) i++;
      i++;
    } else if (c == '\n') {
      (*row)++, *col = 0, i++;
    } else {
      advance(row, col, char_width(p + i, n - i, &len), cols);
      i += len;
    }
  }
}

/* Advances (row, col) over the first nchars characters of the line. */
static void measure_line(const char *s, size_t n, int nchars, int *row, int *col, int cols) {
  size_t i = 0, len;
  for (int k = 0; k < nchars && i < n; k++, i += len) {
    if (s[i] == '\n') {
      (*row)++, *col = 0, len = 1;
    } else if (s[i] == '\t') {
      len = 1;
      advance(row, col, 8 - *col % 8, cols);
    } else {
      advance(row, col, char_width(s + i, n - i, &len), cols);
    }
  }
}

/* The terminal's width as libedit lays the line out. */
static int screen_cols(void) {
  int rows = 0, cols = 0;
  rl_get_screen_size(&rows, &cols);
  return cols > 0 ? cols : 80;
}

/* The screen row (from the prompt's first row) and column of character
 * index upto of the line (rl_point and rl_end must be fresh). */
static void input_position(int upto, int *row, int *col) {
  int cols = screen_cols();
  *row = *col = 0;
  measure_prompt(ed.prompt ? ed.prompt : "", row, col, cols);
  const char *buf = rl_line_buffer ? rl_line_buffer : "";
  measure_line(buf, strlen(buf), upto, row, col, cols);
}

/* Moves the cursor to the first column of the prompt's first row. */
static void move_to_input_start(void) {
  int row, col;
  input_position(rl_point, &row, &col);
  char seq[32];
  out_puts("\r");
  if (row > 0) snprintf(seq, sizeof seq, "\033[%dA", row), out_puts(seq);
}

/* Moves the cursor just past the end of the input. */
static void move_to_input_end(void) {
  int row, col, erow, ecol;
  input_position(rl_point, &row, &col);
  input_position(rl_end, &erow, &ecol);
  char seq[32];
  out_puts("\r");
  if (erow > row) snprintf(seq, sizeof seq, "\033[%dB", erow - row), out_puts(seq);
  if (ecol > 0) snprintf(seq, sizeof seq, "\033[%dC", ecol), out_puts(seq);
}

/* Redraws the prompt and the input from where the cursor is (column 0). */
static void redraw(void) {
  fflush(ed.out);
  rl_forced_update_display();
}

/* ---- the prompt's life ---- */

static void on_line_done(char *line);

/* Shows the prompt: installs libedit's handler (raw mode, prompt drawn);
 * nothing is typed on it yet. */
static void install(void) {
  rl_callback_handler_install(ed.prompt ? ed.prompt : "", on_line_done);
  ed.installed = 1, ed.typed = 0;
  ed.on_prompt = term_on_prompt = 1;
}

/* Removes libedit's handler (cooked mode) without writing anything. */
static void uninstall(void) {
  rl_callback_handler_remove();
  ed.installed = 0;
}

/* Stops watching the terminal. */
static void poll_stop(void) {
  if (ed.poll && ed.polling) uv_poll_stop(ed.poll);
  ed.polling = 0;
}

/* Calls on_line(line) on the main state; line NULL is end of input. */
static void deliver_line(const char *line) {
  lua_State *L = ed.L;
  if (ed.on_line_ref == LUA_NOREF) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ed.on_line_ref); /* stack: on_line */
  if (line) lua_pushstring(L, line);
  else lua_pushnil(L); /* stack: on_line, line */
  ed.in_line = 1;
  call_lua(L, 1, 0, "on_line");
  ed.in_line = 0;
}

/* libedit's line handler: the line is done (libedit is in cooked mode). */
static void on_line_done(char *line) {
  ed.installed = 0;
  if (line) ed.on_prompt = term_on_prompt = 0; /* libedit wrote the newline */
  else end_prompt_line();
  deliver_line(line);
  free(line);
  if (!ed.open) return;
  if (ed.started && !ed.eof) install(); /* libedit needs this for every line */
  else poll_stop();
}

/* The terminal is readable: feed what it has to libedit, character by
 * character, while the prompt is up. */
static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)handle;
  if (status < 0 || (events & UV_DISCONNECT)) ed.eof = 1;
  while (ed.installed && !ed.eof) {
    size_t before = ed.ioff, had = ed.ilen;
    rl_callback_read_char();
    if (ed.ioff == ed.ilen || (ed.ioff == before && ed.ilen == had)) break;
  }
  if (ed.eof && ed.open && (ed.installed || ed.started)) {
    poll_stop();
    if (ed.installed) uninstall();
    end_prompt_line();
    ed.started = 0;
    deliver_line(NULL);
  }
}

/* Starts watching the terminal (the poll handle is made once). */
static int poll_start(lua_State *L) {
  if (ed.poll == NULL) {
    ed.poll = malloc(sizeof *ed.poll);
    if (ed.poll == NULL) return luaL_error(L, "resi.lineedit: out of memory");
    int rc = uv_poll_init(resi_loop(L), ed.poll, ed.tty_fd);
    if (rc < 0) {
      free(ed.poll), ed.poll = NULL;
      return luaL_error(L, "resi.lineedit: cannot watch the terminal: %s", uv_strerror(rc));
    }
  }
  if (!ed.polling) uv_poll_start(ed.poll, UV_READABLE | UV_DISCONNECT, on_readable);
  ed.polling = 1;
  return 0;
}

/* ---- completion ---- */

/* Frees the candidates of the last Tab. */
static void free_candidates(void) {
  for (int i = 0; i < ed.ncands; i++) free(ed.cands[i]);
  free(ed.cands);
  ed.cands = NULL, ed.ncands = ed.next_cand = 0;
}

/* Byte offset of character index nchars in s (at most n). */
static size_t char_offset(const char *s, size_t n, int nchars) {
  size_t i = 0;
  for (int k = 0; k < nchars && i < n; k++) i += utf8_len((unsigned char)s[i]);
  return i < n ? i : n;
}

/* Copies the strings of the array at the top of L into ed.cands; pops it. */
static void take_candidates(lua_State *L) {
  if (lua_istable(L, -1)) {
    lua_Integer n = luaL_len(L, -1);
    if (n > MAX_CANDIDATES) n = MAX_CANDIDATES;
    ed.cands = n > 0 ? calloc((size_t)n, sizeof *ed.cands) : NULL;
    for (lua_Integer i = 1; ed.cands && i <= n; i++) {
      if (lua_rawgeti(L, -1, i) == LUA_TSTRING) { /* stack: t, cand */
        char *c = strdup(lua_tostring(L, -1));
        if (c) ed.cands[ed.ncands++] = c;
      }
      lua_pop(L, 1); /* stack: t */
    }
  }
  lua_pop(L, 1);
}

/* rl_completion_matches' generator: the candidates, one per call. */
static char *next_candidate(const char *text, int state) {
  (void)text;
  if (state == 0) ed.next_cand = 0;
  return ed.next_cand < ed.ncands ? strdup(ed.cands[ed.next_cand++]) : NULL;
}

/* rl_attempted_completion_function: asks the Lua completer (Tab only). */
static char **complete(const char *text, int start, int end) {
  (void)start;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  free_candidates();
  if (ed.completer_ref == LUA_NOREF) return NULL;
  lua_State *L = ed.L;
  const char *line = rl_line_buffer ? rl_line_buffer : "";
  size_t n = strlen(line), tl = strlen(text);
  size_t stop = char_offset(line, n, end);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ed.completer_ref);
  lua_pushstring(L, text);
  lua_pushlstring(L, line, n);
  lua_pushinteger(L, (lua_Integer)(stop >= tl ? stop - tl + 1 : 1));
  lua_pushinteger(L, (lua_Integer)stop); /* stack: fn, text, line, start, stop */
  call_lua(L, 4, 1, "completer");       /* stack: candidates */
  take_candidates(L);                   /* stack: (as before) */
  if (ed.ncands == 0) return NULL;
  char **matches = rl_completion_matches(text, next_candidate);
  free_candidates();
  return matches;
}

/* ---- the editor object ---- */

/* The editor at idx, which must be open. */
static editor *check_editor(lua_State *L, int idx) {
  editor **slot = luaL_checkudata(L, idx, EDITOR_MT);
  if (*slot == NULL || !(*slot)->open) luaL_error(L, "resi.lineedit: the editor is closed");
  return *slot;
}

/* Releases the registry reference *ref. */
static void clear_ref(lua_State *L, int *ref) {
  luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  *ref = LUA_NOREF;
}

/* Replaces the registry reference *ref with the value at idx (nil: none). */
static void set_ref(lua_State *L, int *ref, int idx) {
  clear_ref(L, ref);
  if (!lua_isnoneornil(L, idx)) {
    lua_pushvalue(L, idx);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

/* Keeps a copy of the prompt text. */
static void set_prompt_text(lua_State *L, const char *p) {
  char *copy = strdup(p);
  if (copy == NULL) luaL_error(L, "resi.lineedit: out of memory");
  free(ed.prompt);
  ed.prompt = copy;
}

/* ed:start(prompt, on_line): shows the prompt; lines go to on_line. */
static int ed_start(lua_State *L) {
  check_editor(L, 1);
  const char *p = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  set_prompt_text(L, p);
  set_ref(L, &ed.on_line_ref, 3);
  ed.started = 1, ed.eof = 0;
  if (ed.in_line) return 0; /* on_line_done shows it when on_line returns */
  if (ed.installed) {
    sync_line();
    move_to_input_start();
    out_puts("\033[J");
    fflush(ed.out);
    uninstall();
  }
  poll_start(L);
  install();
  return 0;
}

/* ed:set_prompt(p): the prompt of the next line; redrawn now if shown. */
static int ed_set_prompt(lua_State *L) {
  check_editor(L, 1);
  set_prompt_text(L, luaL_checkstring(L, 2));
  if (!ed.installed || ed.in_line) return 0;
  sync_line();
  move_to_input_start(); /* measured with the old prompt: rl_prompt still has it */
  out_puts("\033[J");
  rl_set_prompt(ed.prompt);
  redraw();
  return 0;
}

/* ed:print(text): writes text above the prompt and the partial input. */
static int ed_print(lua_State *L) {
  check_editor(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  if (!ed.installed || ed.in_line) {
    out_write(s, n);
    fflush(ed.out);
    return 0;
  }
  sync_line();
  move_to_input_start();
  out_puts("\033[J");
  out_write(s, n);
  if (n > 0 && s[n - 1] != '\n') out_puts("\n");
  redraw();
  return 0;
}

/* ed:clear_line(): drops the partial input, writes "^C", a fresh prompt. */
static int ed_clear_line(lua_State *L) {
  check_editor(L, 1);
  if (!ed.installed || ed.in_line) return 0;
  sync_line();
  move_to_input_end();
  out_puts("^C\r\n");
  fflush(ed.out);
  ed.ioff = ed.ilen = 0; /* what was typed before Ctrl-C is dropped too */
  uninstall();
  install();
  return 0;
}

/* ed:line(): the text being edited, or nil when no prompt is shown. */
static int ed_line(lua_State *L) {
  check_editor(L, 1);
  if (!ed.installed || ed.in_line) {
    lua_pushnil(L);
    return 1; /* stack: nil */
  }
  sync_line(); /* rl_end and rl_line_buffer now mirror el_line */
  lua_pushlstring(L, rl_line_buffer ? rl_line_buffer : "", rl_line_buffer && rl_end > 0 ? (size_t)rl_end : 0);
  return 1; /* stack: line */
}

/* ed:typed(): characters read since the prompt was shown or cleared. */
static int ed_typed(lua_State *L) {
  check_editor(L, 1);
  lua_pushinteger(L, ed.typed);
  return 1;
}

/* ed:history_add(entry): one entry, recalled by Up-arrow. */
static int ed_history_add(lua_State *L) {
  check_editor(L, 1);
  add_history(luaL_checkstring(L, 2));
  return 0;
}

/* ed:history_load(entries): the history becomes the array entries. */
static int ed_history_load(lua_State *L) {
  check_editor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  clear_history();
  lua_Integer n = luaL_len(L, 2);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 2, i) == LUA_TSTRING) add_history(lua_tostring(L, -1)); /* stack: .., entry */
    lua_pop(L, 1);
  }
  return 0;
}

/* ed:set_completer(fn|nil): what Tab asks for candidates. */
static int ed_set_completer(lua_State *L) {
  check_editor(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  set_ref(L, &ed.completer_ref, 2);
  return 0;
}

/* ed:resize(): the window changed size. */
static int ed_resize(lua_State *L) {
  check_editor(L, 1);
  rl_resize_terminal();
  if (ed.installed && !ed.in_line) {
    out_puts("\r\033[J");
    redraw();
  }
  return 0;
}

/* Ends the prompt and gives the terminal back (cooked mode, echo). */
static void stop_editor(void) {
  ed.started = 0;
  poll_stop();
  if (ed.open) uninstall();
  end_prompt_line();
  restore_terminal();
}

/* ed:stop(): no prompt until the next ed:start. */
static int ed_stop(lua_State *L) {
  check_editor(L, 1);
  stop_editor();
  return 0;
}

/* Puts back the signal handlers le.open replaced. */
static void restore_fatal_handlers(void) {
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGHUP, &old_hup, NULL);
  term_fd = term_out = -1, term_saved_ok = 0;
}

/* Stops and releases the editor (idempotent). */
static void close_editor(lua_State *L) {
  if (!ed.open) return;
  stop_editor();
  restore_fatal_handlers();
  if (ed.poll) uv_close((uv_handle_t *)ed.poll, resi_free_on_close);
  ed.poll = NULL;
  clear_ref(L, &ed.on_line_ref);
  clear_ref(L, &ed.completer_ref);
  free_candidates();
  free(ed.prompt), ed.prompt = NULL;
  if (ed.in) fclose(ed.in);
  if (ed.out) fclose(ed.out);
  rl_instream = rl_outstream = NULL;
  ed.in = ed.out = NULL;
  close(ed.tty_fd), ed.tty_fd = -1;
  ed.open = 0;
}

/* ed:close() and __gc. */
static int ed_close(lua_State *L) {
  editor **slot = luaL_checkudata(L, 1, EDITOR_MT);
  if (*slot) close_editor(L);
  *slot = NULL;
  return 0;
}

/* Opens our own file description of the terminal at fd (so O_NONBLOCK on
 * it never reaches the shell's fd 0); -1 on failure. */
static int open_tty(int fd) {
  char name[256];
  if (ttyname_r(fd, name, sizeof name) != 0) return -1;
  return open(name, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
}

/* Makes LC_CTYPE UTF-8 (libedit decodes and measures with it). */
static void set_ctype(void) {
  const char *loc = setlocale(LC_CTYPE, "");
  if (loc == NULL || strcmp(nl_langinfo(CODESET), "UTF-8") != 0) setlocale(LC_CTYPE, "C.UTF-8");
}

/* Installs the SIGTERM/SIGHUP handlers that restore the terminal. */
static void install_fatal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  term_saved = ed.saved, term_saved_ok = 1;
  term_fd = ed.tty_fd, term_out = ed.fd_out;
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);
}

/* Sets libedit up: no signal handling of its own, resi's word breaks,
 * reads through read_tty_char, the private sync key. */
static int setup_libedit(void) {
  static char breaks[] = " \t\n\"'`@$><=;|&{(,)}[]+-*/%^#~!";
  rl_catch_signals = 0;
  rl_catch_sigwinch = 0;
  rl_readline_name = "resi";
  rl_instream = ed.in, rl_outstream = ed.out;
  rl_getc_function = read_tty_char;
  if (rl_initialize() != 0) return -1;
  rl_basic_word_break_characters = breaks;
  rl_completer_word_break_characters = breaks;
  rl_completion_append_character = '\0';
  rl_attempted_completion_function = complete;
  rl_add_defun("resi-sync", sync_key, SYNC_KEY);
  return 0;
}

/* Reads an integer field of the options table at idx (def when absent). */
static int opt_fd(lua_State *L, int idx, const char *key, int def) {
  if (lua_isnoneornil(L, idx)) return def;
  lua_getfield(L, idx, key); /* stack: .., v */
  int fd = lua_isnil(L, -1) ? def : (int)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  return fd;
}

/* le.open{fd_in=, fd_out=} -> editor, or nil, message, code. */
static int le_open(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  int fd_in = opt_fd(L, 1, "fd_in", 0), fd_out = opt_fd(L, 1, "fd_out", 1);
  if (ed.open) return resi_push_fail(L, "busy", "resi.lineedit: an editor is already open");
  if (!isatty(fd_in)) return resi_push_fail(L, "notty", "resi.lineedit: fd %d is not a terminal", fd_in);
  editor **slot = resi_new_handle(L, EDITOR_MT); /* stack: ed */
  int tty = open_tty(fd_in), din = dup(fd_in), dout = dup(fd_out);
  FILE *in = din >= 0 ? fdopen(din, "r") : NULL, *out = dout >= 0 ? fdopen(dout, "w") : NULL;
  if (tty < 0 || in == NULL || out == NULL || tcgetattr(tty, &ed.saved) != 0) {
    int err = errno;
    if (tty >= 0) close(tty);
    if (in) fclose(in); else if (din >= 0) close(din);
    if (out) fclose(out); else if (dout >= 0) close(dout);
    return resi_push_fail(L, "error", "resi.lineedit: cannot open the terminal: %s", strerror(err));
  }
  static int at_exit_set;
  if (!at_exit_set) at_exit_set = atexit(restore_at_exit) == 0;
  set_ctype();
  ed.L = resi_main_state(L);
  ed.fd_in = fd_in, ed.fd_out = fd_out, ed.tty_fd = tty, ed.in = in, ed.out = out;
  ed.started = ed.installed = ed.in_line = ed.on_prompt = ed.polling = ed.eof = ed.typed = 0;
  ed.ilen = ed.ioff = 0;
  ed.open = 1;
  *slot = &ed;
  if (setup_libedit() != 0) {
    close_editor(L);
    return resi_push_fail(L, "error", "resi.lineedit: libedit failed to start");
  }
  install_fatal_handlers();
  return 1;
}

/* le.isatty(fd) -> boolean */
static int le_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* ---- interrupts ---- */

/* The hook SIGINT sets on the armed coroutine (lua.c's lstop). */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

/* SIGINT: hooks the armed coroutine and wakes the loop. Only
 * async-signal-safe calls (lua_sethook, uv_async_send). */
static void on_sigint(int sig) {
  (void)sig;
  int saved = errno;
  lua_State *co = intr_co;
  if (co) {
    lua_sethook(co, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
    intr_hooked = 1;
  }
  intr_count++;
  if (intr_async) uv_async_send(intr_async);
  errno = saved;
}

/* The loop side of SIGINT: calls fn(count, hooked) of le.on_interrupt. */
static void on_interrupt_async(uv_async_t *handle) {
  (void)handle;
  int n = intr_count, hooked = intr_hooked;
  intr_count -= n, intr_hooked = 0;
  if (intr_fn_ref == LUA_NOREF || n == 0) return;
  lua_State *L = intr_L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, intr_fn_ref); /* stack: fn */
  lua_pushinteger(L, n);
  lua_pushboolean(L, hooked); /* stack: fn, n, hooked */
  call_lua(L, 2, 0, "on_interrupt");
}

/* Sets up the async handle and the SIGINT handler, once. */
static void setup_interrupts(lua_State *L) {
  if (intr_installed) return;
  uv_async_t *a = malloc(sizeof *a);
  if (a == NULL) luaL_error(L, "resi.lineedit: out of memory");
  if (uv_async_init(resi_loop(L), a, on_interrupt_async) < 0) {
    free(a);
    luaL_error(L, "resi.lineedit: cannot create the interrupt handle");
  }
  uv_unref((uv_handle_t *)a); /* never keeps the loop alive */
  intr_L = resi_main_state(L);
  intr_async = a;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  intr_installed = 1;
}

/* le.on_interrupt(fn|nil): fn(count) runs on the loop after Ctrl-C. */
static int le_on_interrupt(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  setup_interrupts(L);
  set_ref(L, &intr_fn_ref, 1);
  return 0;
}

/* le.arm_interrupt(co|nil): Ctrl-C raises "interrupted" inside co. */
static int le_arm_interrupt(lua_State *L) {
  lua_State *co = lua_isnoneornil(L, 1) ? NULL : lua_tothread(L, 1);
  if (co == NULL && !lua_isnoneornil(L, 1)) luaL_typeerror(L, 1, "coroutine or nil");
  setup_interrupts(L);
  lua_State *old = intr_co;
  intr_co = NULL; /* first, so the handler no longer hooks old */
  if (old) lua_sethook(old, NULL, 0, 0);
  set_ref(L, &intr_co_ref, 1);
  intr_co = co;
  return 0;
}

/* __gc of the module's anchor (at lua_close): SIGINT back as it was, the
 * async handle closed, the editor released. */
static int module_gc(lua_State *L) {
  close_editor(L);
  if (intr_installed) {
    sigaction(SIGINT, &old_int, NULL);
    intr_co = NULL;
    uv_close((uv_handle_t *)intr_async, resi_free_on_close);
    intr_async = NULL;
    intr_installed = 0;
  }
  intr_fn_ref = intr_co_ref = LUA_NOREF; /* the registry goes with the state */
  return 0;
}

int luaopen_resi_lineedit_core(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"start", ed_start},           {"set_prompt", ed_set_prompt},
      {"print", ed_print},           {"clear_line", ed_clear_line},
      {"line", ed_line},             {"typed", ed_typed},
      {"history_add", ed_history_add}, {"history_load", ed_history_load},
      {"set_completer", ed_set_completer}, {"resize", ed_resize},
      {"stop", ed_stop},             {"close", ed_close},
      {NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"open", le_open},           {"isatty", le_isatty},
      {"on_interrupt", le_on_interrupt}, {"arm_interrupt", le_arm_interrupt},
      {NULL, NULL}};
  resi_new_gc_class(L, EDITOR_MT, methods, ed_close);
  resi_new_gc_class(L, MODULE_MT, NULL, module_gc);
  lua_getfield(L, LUA_REGISTRYINDEX, MODULE_MT ".anchor"); /* stack: anchor|nil */
  if (lua_isnil(L, -1)) {
    lua_newuserdatauv(L, 1, 0); /* stack: nil, anchor */
    luaL_setmetatable(L, MODULE_MT);
    lua_setfield(L, LUA_REGISTRYINDEX, MODULE_MT ".anchor");
  }
  lua_pop(L, 1);  /* stack: (empty) */
  luaL_newlib(L, funcs); /* stack: le */
  return 1;
}
