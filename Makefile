# resi: build, test, bench, install.
#   make deps     install the Debian packages resi needs (apt-get; skips what is present)
#   make          build ./resi and its on-demand C modules (build/cmod)
#   make test     run every spec inside resi; the last line is "N passed, N failed"
#   make asan     build with ASan+UBSan into build-asan/ and run the suite with it
#   make valgrind run the suite under valgrind (memcheck)
#   make bench    measure resi against its peers; writes bench/RESULTS.md
#   make install PREFIX=/usr/local   (make uninstall with the same PREFIX removes it)
#   make man      the man pages (build/man) from the --help texts
#   make completion  bash completion (build/completion/resi) from the --help texts

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
BUILD ?= build
PKG_CONFIG ?= pkg-config

# Debian packages: build and run time, then what the suite and bench talk to
# (lua-cjson is the reference resi.json's decoder is tested against).
DEPS_BUILD = build-essential pkg-config liblua5.4-dev lua5.4 libuv1-dev lua-luv-dev \
             libcurl4-openssl-dev libhttp-parser-dev libsqlite3-dev libedit-dev \
             libssl-dev libpq-dev libmimalloc-dev
DEPS_TEST = lua-busted lua-cjson nginx-light openssl curl ca-certificates tinyproxy microsocks stunnel4 time procps python3 python3-requests lua-check \
            python3-aiosmtpd postgresql faketime pgbouncer man-db
# npm is skipped when an npm command exists (NodeSource's nodejs ships it and conflicts with Debian's npm).
DEPS_BENCH = hyperfine libcjson-dev nodejs npm python3 python3-croniter python3-requests wrk time
DEPS_ASAN = clang libclang-rt-14-dev valgrind

HOST_PKGS = lua5.4 libuv lua5.4-luv
CURL_PKGS = libcurl
SQLITE_PKGS = sqlite3
LINEEDIT_PKGS = libedit
CRYPTO_PKGS = libcrypto
PG_PKGS = libpq

WARN = -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT ?= -O2 -g
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) -fno-omit-frame-pointer
HOST_CFLAGS = $(BASE_CFLAGS) $(shell $(PKG_CONFIG) --cflags $(HOST_PKGS)) \
  -DRESI_LUALIB_DIR='"$(RESI_LUALIB_DIR)"' -DRESI_CMOD_DIR='"$(RESI_CMOD_DIR)"'
HOST_LIBS = $(shell $(PKG_CONFIG) --libs $(HOST_PKGS)) -lhttp_parser -lm -ldl
MOD_CFLAGS = $(BASE_CFLAGS) -fPIC $(shell $(PKG_CONFIG) --cflags lua5.4 libuv $(CURL_PKGS) $(SQLITE_PKGS))
CURL_LIBS = $(shell $(PKG_CONFIG) --libs $(CURL_PKGS))
SQLITE_LIBS = $(shell $(PKG_CONFIG) --libs $(SQLITE_PKGS))
LINEEDIT_LIBS = $(shell $(PKG_CONFIG) --libs $(LINEEDIT_PKGS))
CRYPTO_LIBS = $(shell $(PKG_CONFIG) --libs $(CRYPTO_PKGS))
PG_LIBS = $(shell $(PKG_CONFIG) --libs $(PG_PKGS))

# Where a binary outside the source tree looks for the Lua library when it is
# not beside an install layout (the sanitizer build uses the source tree).
RESI_LUALIB_DIR ?= $(PREFIX)/share/resi/lualib
RESI_CMOD_DIR ?= $(PREFIX)/lib/resi

# The binary: every runtime/*.c except the on-demand modules below (each
# links a library that a script which does not use it should not pay for at
# start-up: libcurl ~4 ms, libsqlite3 ~0.2 ms, libedit for the REPL only). Modules are linked with
# -z nodelete: their libuv close callbacks run after lua_close has unloaded
# C libraries.
MODULE_SRCS = runtime/http_client.c runtime/sqlite.c runtime/lineedit.c runtime/crypto.c runtime/smtp.c runtime/pg.c
HOST_SRCS = $(filter-out $(MODULE_SRCS),$(wildcard runtime/*.c))
HOST_OBJS = $(HOST_SRCS:runtime/%.c=$(BUILD)/obj/%.o)
HTTP_MOD = $(BUILD)/cmod/resi/http_core.so
SQLITE_MOD = $(BUILD)/cmod/resi/sqlite_core.so
LINEEDIT_MOD = $(BUILD)/cmod/resi/lineedit_core.so
CRYPTO_MOD = $(BUILD)/cmod/resi/crypto_core.so
SMTP_MOD = $(BUILD)/cmod/resi/smtp_core.so
PG_MOD = $(BUILD)/cmod/resi/pg_core.so
# every on-demand module: what `all` builds and `install` copies
CMODS = $(HTTP_MOD) $(SQLITE_MOD) $(LINEEDIT_MOD) $(CRYPTO_MOD) $(SMTP_MOD) $(PG_MOD)

BIN = $(if $(filter build,$(BUILD)),resi,$(BUILD)/resi)
SPEC_RUN = $(BIN) test

.PHONY: all deps test lint asan valgrind bench install uninstall man completion clean fuzz luals luals-addon install-luals

# Fuzz targets: fuzz/NAME_fuzz.c defines LLVMFuzzerTestOneInput and links the
# runtime (without main.c). `make fuzz` builds them and runs each for
# FUZZ_SECONDS on its corpus in fuzz/corpus/NAME (created if missing).
FUZZ_SECONDS ?= 30
FUZZ_SRCS = $(wildcard fuzz/*_fuzz.c)
FUZZ_BINS = $(FUZZ_SRCS:fuzz/%.c=build-fuzz/%)
FUZZ_LIB_SRCS = $(filter-out runtime/main.c,$(HOST_SRCS))

# Bytecode of every lualib module, which runtime/bytecode.c loads instead of
# compiling the source at each start-up (while the source is not newer).
# Compiled by the resi just built (the same liblua as at run time); each
# chunk is named after the source file it stands for (where that file is read
# from at run time), so tracebacks and debug.getinfo read as from source.
# $(call compile_lua,SOURCE,CHUNK_PATH,OUT)
LUA_SRCS = $(shell find lualib -name '*.lua')
LUAC_DIR = $(BUILD)/cmod/luac
LUACS = $(LUA_SRCS:lualib/%.lua=$(LUAC_DIR)/%.luac)
compile_lua = ./$(BIN) -e 'local src, chunk, out = resi.args[1], resi.args[2], resi.args[3] \
  local f = assert(io.open(src, "rb")) local code = f:read("a") f:close() \
  local fn = assert(load(code, "@" .. chunk)) local o = assert(io.open(out .. ".tmp", "wb")) \
  o:write(string.dump(fn)) o:close() assert(os.rename(out .. ".tmp", out))' $(1) $(2) $(3)

all: $(BIN) $(CMODS) $(LUACS) luals-addon

$(LUAC_DIR)/%.luac: lualib/%.lua $(BIN)
	@mkdir -p $(@D)
	@$(call compile_lua,$<,$(CURDIR)/$<,$@)

# The LuaLS addon ($(BUILD)/luals: library/ of ---@meta files, config.json),
# generated from the --- annotations in lualib/ (resi.apidoc); `all` builds it
# (0.1 s). `make luals` also rewrites docs/API.md, the committed reference
# page (spec/apidoc_spec.lua fails while it is out of date).
luals-addon: $(BIN)
	@./$(BIN) -e 'require("resi.apidoc").main(arg)' $(BUILD)/luals >/dev/null

luals: $(BIN)
	@./$(BIN) -e 'require("resi.apidoc").main(arg)' $(BUILD)/luals docs/API.md

install-luals: luals-addon
	install -d $(DESTDIR)$(PREFIX)/share/resi/luals
	cp -R $(BUILD)/luals/. $(DESTDIR)$(PREFIX)/share/resi/luals/

$(BUILD)/obj/%.o: runtime/%.c runtime/*.h | $(BUILD)/obj
	$(CC) $(HOST_CFLAGS) $(EXTRA_CFLAGS) -c $< -o $@

# mimalloc is the process's malloc (libcurl's, OpenSSL's and Lua's too):
# an HTTP request costs ~8% fewer instructions than with glibc's malloc
# (bench/NOTES.md). Linked first, so its malloc is the one every library
# finds. Sanitizer builds leave it out (MALLOC_LIBS=): they bring their own.
MALLOC_LIBS ?= -lmimalloc
$(BIN): $(HOST_OBJS)
	$(CC) $(EXTRA_LDFLAGS) -o $@ $(HOST_OBJS) $(MALLOC_LIBS) $(HOST_LIBS) -Wl,--export-dynamic

# a module links its own copy of the shared helpers (lutil.c), never the host's symbols
$(HTTP_MOD): runtime/http_client.c runtime/lutil.c runtime/*.h | $(BUILD)/cmod/resi
	$(CC) $(MOD_CFLAGS) $(EXTRA_CFLAGS) -shared -Wl,-z,nodelete -Wl,-Bsymbolic -o $@ runtime/http_client.c runtime/lutil.c $(CURL_LIBS) $(EXTRA_LDFLAGS)

$(SQLITE_MOD): runtime/sqlite.c runtime/lutil.c runtime/*.h | $(BUILD)/cmod/resi
	$(CC) $(MOD_CFLAGS) $(EXTRA_CFLAGS) -shared -Wl,-z,nodelete -Wl,-Bsymbolic -o $@ runtime/sqlite.c runtime/lutil.c $(SQLITE_LIBS) $(EXTRA_LDFLAGS)

$(LINEEDIT_MOD): runtime/lineedit.c runtime/lutil.c runtime/*.h | $(BUILD)/cmod/resi
	$(CC) $(MOD_CFLAGS) $(shell $(PKG_CONFIG) --cflags $(LINEEDIT_PKGS)) $(EXTRA_CFLAGS) -shared -Wl,-z,nodelete -Wl,-Bsymbolic -o $@ runtime/lineedit.c runtime/lutil.c $(LINEEDIT_LIBS) $(EXTRA_LDFLAGS)

# libcrypto (OpenSSL) for HMAC: resi.notify's webhook signatures
$(CRYPTO_MOD): runtime/crypto.c runtime/lutil.c runtime/*.h | $(BUILD)/cmod/resi
	$(CC) $(MOD_CFLAGS) $(shell $(PKG_CONFIG) --cflags $(CRYPTO_PKGS)) $(EXTRA_CFLAGS) -shared -Wl,-z,nodelete -Wl,-Bsymbolic -o $@ runtime/crypto.c runtime/lutil.c $(CRYPTO_LIBS) $(EXTRA_LDFLAGS)

# libcurl's SMTP on libuv's thread pool: resi.notify's email target
$(SMTP_MOD): runtime/smtp.c runtime/lutil.c runtime/*.h | $(BUILD)/cmod/resi
	$(CC) $(MOD_CFLAGS) $(EXTRA_CFLAGS) -shared -Wl,-z,nodelete -Wl,-Bsymbolic -o $@ runtime/smtp.c runtime/lutil.c $(CURL_LIBS) $(CRYPTO_LIBS) $(EXTRA_LDFLAGS)

# libpq, driven by the loop (non-blocking connect and queries): resi.pg
$(PG_MOD): runtime/pg.c runtime/lutil.c runtime/*.h | $(BUILD)/cmod/resi
	$(CC) $(MOD_CFLAGS) $(shell $(PKG_CONFIG) --cflags $(PG_PKGS)) $(EXTRA_CFLAGS) -shared -Wl,-z,nodelete -Wl,-Bsymbolic -o $@ runtime/pg.c runtime/lutil.c $(PG_LIBS) $(EXTRA_LDFLAGS)

$(BUILD)/obj $(BUILD)/cmod/resi:
	mkdir -p $@

deps:
	@missing=""; for p in $(DEPS_BUILD) $(DEPS_TEST) $(if $(BENCH_DEPS),$(DEPS_BENCH)) $(if $(ASAN_DEPS),$(DEPS_ASAN)); do \
	  if [ $$p = npm ] && command -v npm >/dev/null 2>&1; then continue; fi; \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "make deps: all packages present"; fi

test: all
	./$(SPEC_RUN) spec

# Static checks of every Lua file (settings in .luacheckrc).
lint:
	luacheck --quiet --no-color lualib scripts examples spec bench/*.lua

# ASan+UBSan: a separate build tree, run on the same specs from the source tree.
asan:
	$(MAKE) BUILD=build-asan CC=clang OPT="-O1 -g" MALLOC_LIBS= \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" \
	  RESI_LUALIB_DIR=$(CURDIR)/lualib RESI_CMOD_DIR=$(CURDIR)/build-asan/cmod all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS=suppressions=$(CURDIR)/spec/support/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./build-asan/resi test spec

valgrind: all
	RESI_VALGRIND=1 valgrind --quiet --error-exitcode=99 --leak-check=full --soname-synonyms=somalloc=libmimalloc.so* \
	  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  --suppressions=spec/support/valgrind.supp ./resi test spec

build-fuzz/%_fuzz: fuzz/%_fuzz.c $(FUZZ_LIB_SRCS) runtime/*.h
	@mkdir -p build-fuzz
	clang $(BASE_CFLAGS) -O1 -Iruntime $(shell $(PKG_CONFIG) --cflags $(HOST_PKGS)) \
	  -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_LIB_SRCS) $(HOST_LIBS)

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f _fuzz); mkdir -p fuzz/corpus/$$n build-fuzz/new-$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
	    build-fuzz/new-$$n fuzz/corpus/$$n 2>build-fuzz/$$n.log || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units' build-fuzz/$$n.log; done

bench: all
	@$(MAKE) --no-print-directory deps BENCH_DEPS=1
	bench/run

# Man pages and bash completion, generated by running the built resi on its
# own --help texts (resi.helptext reads them; one source, no copy).
HELP_SRCS = runtime/main.c $(shell find lualib -name '*.lua') $(wildcard scripts/*.lua examples/*.lua)
MAN_DIR = $(BUILD)/man
COMPLETION = $(BUILD)/completion/resi

man: $(MAN_DIR)/resi.1
$(MAN_DIR)/resi.1: $(BIN) $(CMODS) $(HELP_SRCS)
	rm -rf $(MAN_DIR)
	./$(BIN) -e 'require("resi.helptext.manpages").main(arg)' $(MAN_DIR) >/dev/null

completion: $(COMPLETION)
$(COMPLETION): $(BIN) $(CMODS) $(HELP_SRCS)
	./$(BIN) -e 'require("resi.helptext.completion").main(arg)' $@

# What install puts where, under $(DESTDIR)$(PREFIX); uninstall removes the same.
SHARE_DIR = $(DESTDIR)$(PREFIX)/share
UNIT_DIR = $(DESTDIR)$(PREFIX)/lib/systemd/system

install: all man completion install-luals
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/resi/lualib $(DESTDIR)$(PREFIX)/lib/resi/resi
	install -m 755 resi $(DESTDIR)$(PREFIX)/bin/resi
	cd lualib && find . -name '*.lua' -exec install -D -m 644 {} $(DESTDIR)$(PREFIX)/share/resi/lualib/{} \;
	install -m 755 $(CMODS) $(DESTDIR)$(PREFIX)/lib/resi/resi/
	cd lualib && find . -name '*.lua' | sed 's|^\./||' | while read -r f; do \
	  install -d "$(DESTDIR)$(PREFIX)/lib/resi/luac/$$(dirname "$$f")" && \
	  (cd .. && $(call compile_lua,"lualib/$$f","$(PREFIX)/share/resi/lualib/$$f","$(DESTDIR)$(PREFIX)/lib/resi/luac/$${f%.lua}.luac")) || exit 1; done
	install -d $(SHARE_DIR)/resi/scripts $(SHARE_DIR)/resi/examples $(SHARE_DIR)/man/man1 \
	  $(SHARE_DIR)/bash-completion/completions $(SHARE_DIR)/doc/resi $(UNIT_DIR)
	install -m 755 scripts/*.lua $(SHARE_DIR)/resi/scripts/
	for f in examples/*.lua; do if head -c 2 $$f | grep -q '^#!'; then m=755; else m=644; fi; \
	  install -m $$m $$f $(SHARE_DIR)/resi/examples/; done
	install -m 644 examples/resi-jobs.service $(SHARE_DIR)/resi/examples/
	install -m 644 $(MAN_DIR)/*.1 $(SHARE_DIR)/man/man1/
	install -m 644 $(COMPLETION) $(SHARE_DIR)/bash-completion/completions/resi
	install -m 644 README.md $(SHARE_DIR)/doc/resi/README.md
	sed 's|/usr/local/|$(PREFIX)/|g' examples/resi-jobs.service > $(UNIT_DIR)/resi-jobs.service
	chmod 644 $(UNIT_DIR)/resi-jobs.service

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/resi $(SHARE_DIR)/man/man1/resi.1 $(SHARE_DIR)/man/man1/resi-*.1 \
	  $(SHARE_DIR)/bash-completion/completions/resi $(UNIT_DIR)/resi-jobs.service
	rm -rf $(SHARE_DIR)/resi $(DESTDIR)$(PREFIX)/lib/resi $(SHARE_DIR)/doc/resi

clean:
	rm -rf build build-asan build-fuzz resi
