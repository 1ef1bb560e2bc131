/**
 * A unix datagram socket standing in for systemd's NOTIFY_SOCKET (python3: Node cannot bind AF_UNIX datagram
 * sockets). Prints "bound", then one JSON line per message: {msg, fileExists} where fileExists says whether the file
 * named by the second argument existed when the message arrived. A name starting with "@" is abstract.
 */
export const DGRAM_SINK = `
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(chr(0) + sys.argv[1][1:] if sys.argv[1].startswith("@") else sys.argv[1])
watch = sys.argv[2] if len(sys.argv) > 2 else None
print("bound", flush=True)
while True:
    msg = s.recv(65536).decode()
    print(json.dumps({"msg": msg, "fileExists": bool(watch) and os.path.exists(watch)}), flush=True)
`
