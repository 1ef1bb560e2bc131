/* sd_notify: one datagram to $NOTIFY_SOCKET (systemd's readiness protocol). Node's dgram module has no AF_UNIX
 * datagram sockets, and systemd accepts a notification only from the unit's main PID (NotifyAccess=main), so the
 * message must leave this very process: a helper process (systemd-notify) would be rejected. Used by
 * src/agent/sd-notify.ts. Paths starting with '@' are abstract-namespace sockets, as in sd_notify(3). */
#include <errno.h>
#include <node_api.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  char msg[4096];
  size_t path_len = 0, msg_len = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &path_len) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], msg, sizeof(msg), &msg_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "send(path: string, message: string)");
    return NULL;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (path_len == 0 || path_len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@')) {
    napi_throw_error(env, "EINVAL", "NOTIFY_SOCKET must be an absolute path or an abstract name (@...)");
    return NULL;
  }
  memcpy(sa.sun_path, path, path_len);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    napi_throw_error(env, "ESOCKET", strerror(errno));
    return NULL;
  }
  ssize_t n = sendto(fd, msg, msg_len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sa_len);
  int err = errno;
  close(fd);
  if (n < 0) {
    napi_throw_error(env, "ESENDTO", strerror(err));
    return NULL;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {{"send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL}};
  napi_define_properties(env, exports, 1, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
