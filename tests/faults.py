"""Network faults for the tests: a loopback TCP proxy in front of a real PostgreSQL that can forward,
drop new connections, or go silent while keeping every connection open (the case that defeats
server-side timeouts and plain socket settings)."""

import select
import socket
import threading


class FaultyProxy:
    """127.0.0.1:port -> target. Modes:
        forward  pass bytes both ways
        drop     close each new connection at once (existing ones are cut too)
        silent   accept connections and swallow every byte, answering nothing, for as long as it lasts
    """

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.mode = "forward"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = threading.Event()
        self._sockets = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def set_mode(self, mode):
        assert mode in ("forward", "drop", "silent"), mode
        self.mode = mode
        if mode == "drop":
            self._cut_all()

    def _track(self, sock):
        with self._lock:
            self._sockets.append(sock)

    def _cut_all(self):
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept_loop(self):
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "drop":
                client.close()
                continue
            self._track(client)
            upstream = None
            if self.mode == "forward":
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                self._track(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client, upstream):
        peers = {client: upstream, upstream: client} if upstream else {client: None}
        try:
            while not self._closing.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.mode == "forward" and peers[sock] is not None:
                        peers[sock].sendall(data)
                    # silent: swallowed; the other side waits for ever
        except (OSError, ValueError):
            return
        finally:
            for sock in peers:
                if sock is not None:
                    sock.close()

    def close(self):
        self._closing.set()
        self._listener.close()
        self._cut_all()
