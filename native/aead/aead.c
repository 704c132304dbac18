/*
 * natpunch aead: AEAD_CHACHA20_POLY1305 (RFC 8439 §2.8) with Noise's nonce layout (4 zero bytes,
 * then the 64-bit counter little-endian: Noise rev 34 §12.3), on an OpenSSL cipher context kept
 * per key. node:crypto builds a new context for every createCipheriv (key schedule, provider
 * lookup, a JS object, a Buffer per update and per tag); for one ~1200-byte datagram that fixed
 * cost is most of the ~10 µs a call takes. Here a key's context is made once and each call only
 * sets the nonce, so a datagram costs about what the cipher itself costs.
 *
 * No libcrypto of our own: Node links OpenSSL into its executable and exports its symbols, and
 * node-gyp puts Node's copy of the OpenSSL headers (include/node/openssl) on the include path
 * first, so this file compiles against, and runs with, the very OpenSSL node:crypto uses. The
 * module is linked with -z now: on a Node that does not export them, loading fails (and natpunch
 * falls back to node:crypto) instead of a call failing later.
 *
 * createKey(key: 32 bytes) -> handle
 *   A cipher context holding `key`. Freed by free(handle) or, failing that, when the handle is
 *   garbage collected; a freed handle throws on use and frees nothing twice.
 * seal(handle, counter, ad, plaintext, out, offset) -> undefined
 *   Writes ciphertext || tag (plaintext.length + 16 bytes) at out[offset].
 * open(handle, counter, ad, sealed, out, offset) -> boolean
 *   sealed is ciphertext || tag; on an authentic one writes sealed.length - 16 bytes of plaintext
 *   at out[offset] and returns true; on a forged one returns false and zeroes what it wrote.
 * free(handle) -> undefined
 *
 * No batch call: sealing a burst in one N-API call measured no cheaper per datagram than one call
 * each (docs/decisions/007-datagram-aead.md); a burst saves allocations, which the caller makes.
 *
 * Counters are JS numbers in 0 .. 2^53-1 (CipherState's range); argument errors throw TypeError
 * or RangeError, OpenSSL failures an Error naming the call.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_LENGTH 32
#define NONCE_LENGTH 12
#define TAG_LENGTH 16
#define MAX_COUNTER 9007199254740991.0 /* 2^53 - 1 */
/* EVP's lengths are ints; a datagram is far below. */
#define MAX_MESSAGE_LENGTH (1 << 30)

typedef struct {
  EVP_CIPHER_CTX *ctx; /* NULL once freed */
} aead_key;

static napi_value undefined(napi_env env) {
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

static napi_value type_error(napi_env env, const char *what) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return NULL;
}

static napi_value range_error(napi_env env, const char *what) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
  return NULL;
}

static napi_value openssl_error(napi_env env, const char *call) {
  napi_throw_error(env, "ERR_NATPUNCH_AEAD", call);
  return NULL;
}

static bool get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_typedarray_type type;
  void *pointer;
  if (napi_get_typedarray_info(env, value, &type, length, &pointer, NULL, NULL) != napi_ok || type != napi_uint8_array) return false;
  *data = pointer;
  return true;
}

static bool get_counter(napi_env env, napi_value value, double *counter) {
  return napi_get_value_double(env, value, counter) == napi_ok;
}

static void noise_nonce(double counter, uint8_t nonce[NONCE_LENGTH]) {
  uint64_t n = (uint64_t)counter;
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

static void finalize_key(napi_env env, void *data, void *hint) {
  aead_key *key = data;
  if (key->ctx) EVP_CIPHER_CTX_free(key->ctx); /* also cleanses the key schedule */
  free(key);
}

/* The key behind a handle; with `live`, a freed one throws. */
static aead_key *get_key(napi_env env, napi_value value, bool live) {
  void *data;
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external || napi_get_value_external(env, value, &data) != napi_ok) {
    type_error(env, "aead: expected a key handle from createKey()");
    return NULL;
  }
  aead_key *key = data;
  if (live && !key->ctx) {
    napi_throw_error(env, "ERR_NATPUNCH_AEAD_FREED", "aead: key handle used after free()");
    return NULL;
  }
  return key;
}

static napi_value create_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint8_t *bytes;
  size_t length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !get_bytes(env, argv[0], &bytes, &length)) {
    return type_error(env, "aead: expected createKey(key: Uint8Array)");
  }
  if (length != KEY_LENGTH) return range_error(env, "aead: key length must be 32");
  aead_key *key = calloc(1, sizeof *key);
  if (!key) return openssl_error(env, "aead: out of memory");
  key->ctx = EVP_CIPHER_CTX_new();
  if (!key->ctx || EVP_CipherInit_ex(key->ctx, EVP_chacha20_poly1305(), NULL, bytes, NULL, 1) != 1) {
    finalize_key(env, key, NULL);
    return openssl_error(env, "aead: EVP_CipherInit_ex(chacha20-poly1305) failed");
  }
  napi_value handle;
  if (napi_create_external(env, key, finalize_key, NULL, &handle) != napi_ok) {
    finalize_key(env, key, NULL);
    return NULL;
  }
  return handle;
}

/* One AEAD operation on `ctx`; for open, `tag` is checked and `out` zeroed when it does not match. */
static bool crypt(EVP_CIPHER_CTX *ctx, int encrypt, double counter, const uint8_t *ad, size_t ad_length, const uint8_t *in,
                  size_t length, uint8_t *out, uint8_t *tag) {
  uint8_t nonce[NONCE_LENGTH];
  int written = 0, final_written = 0;
  noise_nonce(counter, nonce);
  if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, encrypt) != 1) return false;
  if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LENGTH, tag) != 1) return false;
  if (ad_length > 0 && EVP_CipherUpdate(ctx, NULL, &written, ad, (int)ad_length) != 1) return false;
  if (length > 0 && EVP_CipherUpdate(ctx, out, &written, in, (int)length) != 1) return false;
  if (EVP_CipherFinal_ex(ctx, out + written, &final_written) != 1) {
    if (!encrypt) memset(out, 0, length);
    return false;
  }
  return !encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LENGTH, tag) == 1;
}

/* The arguments seal and open share: (handle, counter, ad, input, out, offset). */
typedef struct {
  aead_key *key;
  double counter;
  uint8_t *ad, *in, *out;
  size_t ad_length, in_length, out_length;
  int64_t offset;
} call_args;

static bool get_args(napi_env env, napi_callback_info info, call_args *args, const char *usage) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    type_error(env, usage);
    return false;
  }
  if (!(args->key = get_key(env, argv[0], true))) return false;
  if (!get_counter(env, argv[1], &args->counter) || !get_bytes(env, argv[2], &args->ad, &args->ad_length) ||
      !get_bytes(env, argv[3], &args->in, &args->in_length) || !get_bytes(env, argv[4], &args->out, &args->out_length) ||
      napi_get_value_int64(env, argv[5], &args->offset) != napi_ok) {
    type_error(env, usage);
    return false;
  }
  if (!(args->counter >= 0 && args->counter <= MAX_COUNTER) || args->counter != (double)(uint64_t)args->counter) {
    range_error(env, "aead: counter must be an integer in 0 .. 2^53-1");
    return false;
  }
  if (args->ad_length > MAX_MESSAGE_LENGTH || args->in_length > MAX_MESSAGE_LENGTH + TAG_LENGTH || args->offset < 0) {
    range_error(env, "aead: associated data or message over 2^30 bytes, or a negative offset");
    return false;
  }
  return true;
}

/* out[offset .. offset + need) exists. */
static bool fits(const call_args *args, size_t need) {
  return (uint64_t)args->offset <= args->out_length && need <= args->out_length - (size_t)args->offset;
}

static napi_value seal(napi_env env, napi_callback_info info) {
  call_args args;
  if (!get_args(env, info, &args,
                "aead: expected seal(handle, counter: number, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number)")) {
    return NULL;
  }
  size_t length = args.in_length;
  if (length > MAX_MESSAGE_LENGTH || !fits(&args, length + TAG_LENGTH)) {
    return range_error(env, "aead: seal: out has no room for plaintext.length + 16 bytes at offset");
  }
  uint8_t *at = args.out + args.offset;
  if (!crypt(args.key->ctx, 1, args.counter, args.ad, args.ad_length, args.in, length, at, at + length)) {
    return openssl_error(env, "aead: seal: EVP ChaCha20-Poly1305 encryption failed");
  }
  return undefined(env);
}

static napi_value open_(napi_env env, napi_callback_info info) {
  call_args args;
  if (!get_args(env, info, &args,
                "aead: expected open(handle, counter: number, ad: Uint8Array, sealed: Uint8Array, out: Uint8Array, offset: number)")) {
    return NULL;
  }
  if (args.in_length < TAG_LENGTH || !fits(&args, args.in_length - TAG_LENGTH)) {
    return range_error(env, "aead: open: sealed shorter than the tag, or out has no room for sealed.length - 16 bytes at offset");
  }
  size_t body = args.in_length - TAG_LENGTH;
  uint8_t tag[TAG_LENGTH];
  memcpy(tag, args.in + body, TAG_LENGTH);
  /* Separate buffers, or exactly in place: EVP refuses partly overlapping ones. */
  bool ok = crypt(args.key->ctx, 0, args.counter, args.ad, args.ad_length, args.in, body, args.out + args.offset, tag);
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value free_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value handle;
  if (napi_get_cb_info(env, info, &argc, &handle, NULL, NULL) != napi_ok || argc < 1) return type_error(env, "aead: expected free(handle)");
  aead_key *key = get_key(env, handle, false);
  if (key && key->ctx) {
    EVP_CIPHER_CTX_free(key->ctx);
    key->ctx = NULL; /* the finalizer frees the struct later */
  }
  return key ? undefined(env) : NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "createKey", NULL, create_key, NULL, NULL, NULL, napi_enumerable, NULL },
    { "seal", NULL, seal, NULL, NULL, NULL, napi_enumerable, NULL },
    { "open", NULL, open_, NULL, NULL, NULL, napi_enumerable, NULL },
    { "free", NULL, free_key, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
