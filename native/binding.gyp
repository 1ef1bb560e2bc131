# flannel_udp: the udp backend's forwarder (src/flannel_udp.c), loaded by src/backends/udp/native.ts.
# sd_notify: one datagram to $NOTIFY_SOCKET (src/sd_notify.c), loaded by src/agent/sd-notify.ts.
# Build: npm run build:native (= node-gyp rebuild --directory=native, with npm's bundled node-gyp and the
# machine's Node headers via npm's nodedir setting). On other systems src/unsupported.c builds a stub that
# refuses to load, so installing flannelctl does not fail there.
{
  "targets": [
    {
      "target_name": "flannel_udp",
      "sources": ["src/flannel_udp.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["OS!='linux'", {"sources!": ["src/flannel_udp.c"], "sources": ["src/unsupported.c"]}]
      ]
    },
    {
      "target_name": "sd_notify",
      "sources": ["src/sd_notify.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11"],
      "cflags": ["-Wall", "-Wextra"],
      "conditions": [["OS!='linux'", {"sources!": ["src/sd_notify.c"], "sources": ["src/unsupported.c"]}]]
    }
  ]
}
