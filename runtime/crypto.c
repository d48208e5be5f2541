/* crypto.c: resi.crypto_core, the few primitives of OpenSSL's libcrypto
 * that resi needs (webhook signatures): HMAC with a named digest, a digest,
 * and a comparison whose time does not depend on where two strings differ.
 *
 * Built as an on-demand module (build/cmod/resi/crypto_core.so) linking
 * libcrypto, so scripts that never sign anything do not load it. Hex
 * encoding and policy (which header, what is signed) are in Lua
 * (lualib/resi/notify/sign.lua). */
#include <limits.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "resi.h"

/* The digest named by the string at idx ("sha256", "sha1", "sha512" ...). */
static const EVP_MD *check_digest(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  const EVP_MD *md = EVP_get_digestbyname(name);
  if (md == NULL) luaL_argerror(L, idx, lua_pushfstring(L, "unknown digest '%s'", name));
  return md;
}

/* core.hmac(digest, key, message) -> the raw MAC bytes. */
static int crypto_hmac(lua_State *L) {
  const EVP_MD *md = check_digest(L, 1);
  size_t klen, mlen;
  const char *key = luaL_checklstring(L, 2, &klen);
  const char *msg = luaL_checklstring(L, 3, &mlen);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int outlen = 0;
  if (klen > INT_MAX) return luaL_argerror(L, 2, "key too long");
  if (HMAC(md, key, (int)klen, (const unsigned char *)msg, mlen, out, &outlen) == NULL)
    return luaL_error(L, "resi.crypto: HMAC failed");
  lua_pushlstring(L, (const char *)out, outlen); /* stack: mac */
  return 1;
}

/* core.digest(digest, message) -> the raw hash bytes. */
static int crypto_digest(lua_State *L) {
  const EVP_MD *md = check_digest(L, 1);
  size_t mlen;
  const char *msg = luaL_checklstring(L, 2, &mlen);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int outlen = 0;
  if (!EVP_Digest(msg, mlen, out, &outlen, md, NULL)) return luaL_error(L, "resi.crypto: digest failed");
  lua_pushlstring(L, (const char *)out, outlen); /* stack: hash */
  return 1;
}

/* core.equal(a, b) -> whether two strings are equal, in time that depends
 * on their length only (for comparing a received signature). */
static int crypto_equal(lua_State *L) {
  size_t alen, blen;
  const char *a = luaL_checklstring(L, 1, &alen);
  const char *b = luaL_checklstring(L, 2, &blen);
  lua_pushboolean(L, alen == blen && CRYPTO_memcmp(a, b, alen) == 0); /* stack: equal */
  return 1;
}

static const luaL_Reg crypto_funcs[] = {
    {"hmac", crypto_hmac},
    {"digest", crypto_digest},
    {"equal", crypto_equal},
    {NULL, NULL},
};

int luaopen_resi_crypto_core(lua_State *L) {
  luaL_newlib(L, crypto_funcs); /* stack: core */
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "version");
  return 1;
}
