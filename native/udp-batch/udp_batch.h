/* natpunch udp-batch: the receive side (udp_recv.c) registers its functions on the module's exports. */
#ifndef NATPUNCH_UDP_BATCH_H
#define NATPUNCH_UDP_BATCH_H
#include <node_api.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h */
#endif
/*
 * Segments per GSO message: UDP_MAX_SEGMENTS is 64 up to Linux 6.8 (128 since). And the bytes
 * of one GSO message must fit one IP packet's length field before segmentation: 65535 minus
 * the IPv6 header (40) and UDP header (8), which is also below IPv4's limit (65507).
 */
#define MAX_GSO_SEGMENTS 64
#define MAX_GSO_BYTES (65535 - 40 - 8)

/* Control buffer for one UDP_SEGMENT message. */
#define GSO_CONTROL_SIZE CMSG_SPACE(sizeof(uint16_t))

/* Makes `h` a UDP GSO message of `segment_size`-byte segments (udp(7): UDP_SEGMENT), with its cmsg in `control`. */
static inline void set_udp_segment(struct msghdr *h, char *control, size_t segment_size) {
  h->msg_control = control;
  h->msg_controllen = GSO_CONTROL_SIZE;
  struct cmsghdr *c = CMSG_FIRSTHDR(h);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t size = (uint16_t)segment_size;
  memcpy(CMSG_DATA(c), &size, sizeof size);
}

void udp_recv_register(napi_env env, napi_value exports);
#endif
