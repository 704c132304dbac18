/*
 * natpunch udp-batch: hand a burst of UDP datagrams to the kernel in one system call, on the
 * file descriptor of an existing node:dgram socket (libuv sends one sendmsg(2) per datagram).
 *
 * A separate addon from native/tcp-ttl on purpose: each is one small file with one concern,
 * and either may fail to build or be turned off without the other (NATPUNCH_NO_NATIVE=1 turns
 * both off).
 *
 * sendBatch(fd, ipv6Socket, address, port, buffers, gso) -> count | -errno
 *   Sends buffers[0..] in order to address:port with one sendmmsg(2). With `gso`, runs of
 *   equal-sized datagrams (the last of a run may be shorter) go as one message carrying a
 *   UDP_SEGMENT control message (UDP GSO, Linux >= 4.18, udp(7)): the stack handles the run as
 *   one packet and splits it into datagrams as late as possible.
 *   Never blocks (MSG_DONTWAIT). Returns how many datagrams the kernel took, from the front:
 *   the caller sends the rest its usual way (EAGAIN: the socket buffer is full; libuv then
 *   queues them until the socket is writable). Returns -errno when nothing was sent and the
 *   call failed (e.g. -EIO or -EINVAL: no UDP GSO on this kernel or device; -EBADF), or
 *   -EAFNOSUPPORT for an address it does not parse as one of the socket's family.
 *   Errors after the first message are not reported by sendmmsg(2); the count says where it
 *   stopped.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "udp_batch.h"

/* Datagrams per call; a longer array is sent up to here and the count says so. */
#define MAX_DATAGRAMS 256

union endpoint {
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
};

/* address:port as the socket's family wants it: an IPv4 address on an IPv6 socket is v4-mapped. */
static int parse_endpoint(const char *address, int32_t port, bool ipv6_socket, union endpoint *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (port < 1 || port > 65535) return -1;
  struct in_addr a4;
  if (inet_pton(AF_INET, address, &a4) == 1) {
    if (!ipv6_socket) {
      out->v4.sin_family = AF_INET;
      out->v4.sin_port = htons((uint16_t)port);
      out->v4.sin_addr = a4;
      *len = sizeof out->v4;
      return 0;
    }
    out->v6.sin6_family = AF_INET6;
    out->v6.sin6_port = htons((uint16_t)port);
    out->v6.sin6_addr.s6_addr[10] = 0xff;
    out->v6.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&out->v6.sin6_addr.s6_addr[12], &a4, 4);
    *len = sizeof out->v6;
    return 0;
  }
  if (!ipv6_socket || inet_pton(AF_INET6, address, &out->v6.sin6_addr) != 1) return -1;
  out->v6.sin6_family = AF_INET6;
  out->v6.sin6_port = htons((uint16_t)port);
  *len = sizeof out->v6;
  return 0;
}

static napi_value number(napi_env env, int64_t value) {
  napi_value result;
  napi_create_int64(env, value, &result);
  return result;
}

static napi_value bad_arguments(napi_env env, const char *what) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return NULL;
}

static napi_value send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  int32_t fd, port;
  bool ipv6_socket, gso, is_array;
  char address[64];
  size_t address_len;
  uint32_t count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_bool(env, argv[1], &ipv6_socket) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], address, sizeof address, &address_len) != napi_ok ||
      napi_get_value_int32(env, argv[3], &port) != napi_ok ||
      napi_is_array(env, argv[4], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[4], &count) != napi_ok ||
      napi_get_value_bool(env, argv[5], &gso) != napi_ok) {
    return bad_arguments(env, "udp-batch: expected (fd: number >= 0, ipv6Socket: boolean, address: string, port: number, buffers: Uint8Array[], gso: boolean)");
  }
  union endpoint to;
  socklen_t to_len;
  /* Not an address this socket can send to (a hostname, a scope id, the other family): the
   * caller's ordinary send path knows what to do with it. */
  if (parse_endpoint(address, port, ipv6_socket, &to, &to_len)) return number(env, -EAFNOSUPPORT);
  if (count > MAX_DATAGRAMS) count = MAX_DATAGRAMS;
  if (count == 0) return number(env, 0);

  /* Per thread: worker threads each have their own JS environment and may call at once. */
  static _Thread_local struct iovec iov[MAX_DATAGRAMS];
  static _Thread_local struct mmsghdr msgs[MAX_DATAGRAMS];
  static _Thread_local uint32_t segments[MAX_DATAGRAMS]; /* datagrams carried by each message */
  static _Thread_local char control[MAX_DATAGRAMS][GSO_CONTROL_SIZE];
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    napi_typedarray_type type;
    size_t length;
    void *data;
    if (napi_get_element(env, argv[4], i, &element) != napi_ok ||
        napi_get_typedarray_info(env, element, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
      return bad_arguments(env, "udp-batch: every buffer must be a Uint8Array");
    }
    iov[i].iov_base = data;
    iov[i].iov_len = length;
  }

  /* Group the datagrams into messages: one per datagram, or GSO runs. */
  uint32_t messages = 0;
  for (uint32_t i = 0; i < count;) {
    uint32_t n = 1;
    size_t size = iov[i].iov_len, total = size;
    if (gso && size > 0) {
      /* Equal sizes extend the run; a shorter datagram may end it (udp(7): UDP_SEGMENT). */
      while (i + n < count && n < MAX_GSO_SEGMENTS && iov[i + n].iov_len > 0 && iov[i + n].iov_len <= size &&
             total + iov[i + n].iov_len <= MAX_GSO_BYTES) {
        total += iov[i + n].iov_len;
        n++;
        if (iov[i + n - 1].iov_len < size) break;
      }
    }
    struct msghdr *h = &msgs[messages].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &to;
    h->msg_namelen = to_len;
    h->msg_iov = &iov[i];
    h->msg_iovlen = n;
    if (n > 1) set_udp_segment(h, control[messages], size);
    segments[messages++] = n;
    i += n;
  }

  int sent;
  do sent = sendmmsg(fd, msgs, messages, MSG_DONTWAIT);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) return number(env, -errno);
  int64_t datagrams = 0;
  for (int m = 0; m < sent; m++) datagrams += segments[m];
  return number(env, datagrams);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "sendBatch", NULL, send_batch, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  udp_recv_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
