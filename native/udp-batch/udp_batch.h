/* natpunch udp-batch: the receive side (udp_recv.c) registers its functions on the module's exports. */
#ifndef NATPUNCH_UDP_BATCH_H
#define NATPUNCH_UDP_BATCH_H
#include <node_api.h>
void udp_recv_register(napi_env env, napi_value exports);
#endif
