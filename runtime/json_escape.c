/* json_escape.c: decoding one backslash escape of a JSON string, shared by
 * resi.json's decoder (json_decode.c) and the proxy-list JSON reader
 * (proxylist_json.c), which differ only in what they do with the bytes and
 * whether a cut-short escape means "read more" or "the text ended". */
#include "json.h"

/* The value of one hex digit, or -1. */
static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (char)(c | 0x20);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* The code unit of the "\uXXXX" at p (6 bytes known to be there), or -1. */
static long unit(const char *p) {
  if (p[0] != '\\' || p[1] != 'u') return -1;
  long v = 0;
  for (int i = 2; i < 6; i++) {
    int h = hex_digit(p[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/* Writes code point cp as UTF-8 into u; returns its length. */
static size_t utf8(unsigned long cp, char u[4]) {
  if (cp < 0x80) return u[0] = (char)cp, 1;
  if (cp < 0x800) return u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), 2;
  if (cp < 0x10000)
    return u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), 3;
  u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int resi_json_unescape(const char *p, const char *end, char out[4], size_t *outlen, const char **why) {
  if (end - p < 2) return 0;
  char simple;
  switch (p[1]) {
  case '"': simple = '"'; break;
  case '\\': simple = '\\'; break;
  case '/': simple = '/'; break;
  case 'b': simple = '\b'; break;
  case 'f': simple = '\f'; break;
  case 'n': simple = '\n'; break;
  case 'r': simple = '\r'; break;
  case 't': simple = '\t'; break;
  case 'u': {
    if (end - p < 6) return 0;
    long hi = unit(p);
    if (hi < 0) return *why = "invalid \\u escape", -1;
    if (hi >= 0xDC00 && hi <= 0xDFFF) return *why = "unpaired surrogate in a \\u escape", -1;
    if (hi < 0xD800 || hi > 0xDBFF) return *outlen = utf8((unsigned long)hi, out), 6;
    if (end - p < 12) return 0;
    long lo = unit(p + 6);
    if (lo < 0xDC00 || lo > 0xDFFF) return *why = "unpaired surrogate in a \\u escape", -1;
    *outlen = utf8(0x10000 + (((unsigned long)hi - 0xD800) << 10) + ((unsigned long)lo - 0xDC00), out);
    return 12;
  }
  default: return *why = "invalid escape in a string", -1;
  }
  out[0] = simple, *outlen = 1;
  return 2;
}
