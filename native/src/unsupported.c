/* flannel_udp needs Linux (/dev/net/tun, eventfd); elsewhere the addon builds but refuses to load, so that
 * installing flannelctl does not fail on a developer's non-Linux machine. */
#include <node_api.h>

static napi_value init(napi_env env, napi_value exports) {
  napi_throw_error(env, "ENOTSUP", "the udp backend's forwarder (flannel_udp) is only available on Linux");
  return NULL;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
