"""A socket population with known counts per port, run inside a test's network namespace
(`nsenter --net=NS python3 port_workload.py`): what tests/integration/test_ports.py checks
every adapter against. The counts follow from construction; the test also checks them
against `ss`.

Each kind of connection goes to a listener of its own, on a fixed port, so the expected
per-port counts are known before anything is collected:

  PORT_ESTABLISHED  ESTABLISHED pairs (IPv4 and IPv6): local LISTEN 2 + ESTABLISHED n,
                    remote ESTABLISHED n
  PORT_CLOSE_WAIT   clients shut down: local LISTEN 1 + CLOSE_WAIT n, remote FIN_WAIT2 n
  PORT_TIME_WAIT    clients closed first: local LISTEN 1, remote TIME_WAIT n
  PORT_SYN_RECV     a TCP_DEFER_ACCEPT listener, clients send nothing: local LISTEN 1 +
                    SYN_RECV n, remote ESTABLISHED n
  PORT_QUEUE        a listener of backlog BACKLOG that never accepts: BACKLOG + 1
                    connections fill its accept queue (local LISTEN 1 + ESTABLISHED
                    BACKLOG + 1, remote ESTABLISHED BACKLOG + 1); `overflow K` on stdin sends
                    K more clients, whose SYNs the full queue drops (ListenOverflows) and who
                    stay in SYN_SENT
  PORT_DATA         one pair whose server never reads UNREAD_BYTES, and one whose server has a
                    tiny receive buffer and a client that wrote until its send buffer filled:
                    Recv-Q and Send-Q that are not zero

`--listen PORT --name NAME` instead holds one listener under that process name (a new
listener for the tests), printing "ready PID".
"""

import argparse
import ctypes
import json
import socket
import sys
import time

PORT_ESTABLISHED = 7001
PORT_CLOSE_WAIT = 7002
PORT_TIME_WAIT = 7003
PORT_SYN_RECV = 7004
PORT_QUEUE = 7005
PORT_DATA = 7006
BACKLOG = 3
UNREAD_BYTES = 1000

ESTABLISHED_IPV4, ESTABLISHED_IPV6 = 3, 2
CLOSE_WAIT = 4
TIME_WAIT = 5
SYN_RECV = 2


def listener(port, backlog=64, family=socket.AF_INET, defer_accept=False):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if defer_accept:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 3600)
    s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", port))
    s.listen(backlog)
    return s


def connect(port, family=socket.AF_INET):
    c = socket.socket(family, socket.SOCK_STREAM)
    c.connect(("::1" if family == socket.AF_INET6 else "127.0.0.1", port))
    return c


def pairs(server, count, family=socket.AF_INET):
    port = server.getsockname()[1]
    out = []
    for _ in range(count):
        client = connect(port, family)
        out.append((client, server.accept()[0]))
    return out


def accept_queue_length(server):
    """A listener's accept queue length: TCP_INFO's tcpi_unacked (bytes 24..28)."""
    info = server.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return int.from_bytes(info[24:28], "little")


def wait(predicate, what):
    for _ in range(2000):
        if predicate():
            return
        time.sleep(0.005)
    raise RuntimeError(f"timed out waiting for {what}")


def build(held):
    established = listener(PORT_ESTABLISHED)
    established6 = listener(PORT_ESTABLISHED, family=socket.AF_INET6)
    held += [established, established6]
    held += [s for p in pairs(established, ESTABLISHED_IPV4) for s in p]
    held += [s for p in pairs(established6, ESTABLISHED_IPV6, socket.AF_INET6) for s in p]

    close_wait = listener(PORT_CLOSE_WAIT)
    held.append(close_wait)
    for client, server in pairs(close_wait, CLOSE_WAIT):
        client.shutdown(socket.SHUT_WR)
        assert server.recv(1) == b""  # the FIN arrived: the server is in CLOSE_WAIT
        held += [client, server]

    time_wait = listener(PORT_TIME_WAIT)
    held.append(time_wait)
    for client, server in pairs(time_wait, TIME_WAIT):
        client.close()  # the active closer ends in TIME_WAIT
        assert server.recv(1) == b""
        server.close()

    syn_recv = listener(PORT_SYN_RECV, defer_accept=True)
    held.append(syn_recv)
    held += [connect(PORT_SYN_RECV) for _ in range(SYN_RECV)]

    queue = listener(PORT_QUEUE, backlog=BACKLOG)
    held.append(queue)
    held += [connect(PORT_QUEUE) for _ in range(BACKLOG + 1)]
    wait(lambda: accept_queue_length(queue) == BACKLOG + 1, "the accept queue to fill")

    data = listener(PORT_DATA)
    held.append(data)
    (client, server), = pairs(data, 1)
    client.sendall(b"x" * UNREAD_BYTES)
    held += [client, server]
    # A server with a small receive buffer that never reads, and a client that writes until
    # its own send buffer is full: both queues hold bytes, and they stop changing.
    stalled_server_listener = listener(PORT_DATA + 100)
    stalled_server_listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    (client, server), = pairs(stalled_server_listener, 1)
    stalled_server_listener.close()  # not part of PORT_DATA's counts
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setblocking(False)
    try:
        while True:
            client.send(b"y" * 4096)
    except BlockingIOError:
        pass
    held += [client, server]
    return queue


def expected():
    """{"local": {port: {state: n}}, "remote": {...}} by construction (states with sockets)."""
    est = ESTABLISHED_IPV4 + ESTABLISHED_IPV6
    queued = BACKLOG + 1
    return {
        "local": {
            PORT_ESTABLISHED: {"listen": 2, "established": est},
            PORT_CLOSE_WAIT: {"listen": 1, "close_wait": CLOSE_WAIT},
            PORT_TIME_WAIT: {"listen": 1},
            PORT_SYN_RECV: {"listen": 1, "syn_recv": SYN_RECV},
            PORT_QUEUE: {"listen": 1, "established": queued},
            PORT_DATA: {"listen": 1, "established": 1},
        },
        "remote": {
            PORT_ESTABLISHED: {"established": est},
            PORT_CLOSE_WAIT: {"fin_wait2": CLOSE_WAIT},
            PORT_TIME_WAIT: {"time_wait": TIME_WAIT},
            PORT_SYN_RECV: {"established": SYN_RECV},
            PORT_QUEUE: {"established": queued},
            PORT_DATA: {"established": 1},
        },
    }


def hold_listener(port, name):
    libc = ctypes.CDLL(None)
    libc.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME: our comm
    held = listener(port)
    print("ready", __import__("os").getpid(), flush=True)
    sys.stdin.read()
    held.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int)
    parser.add_argument("--name")
    args = parser.parse_args()
    if args.listen:
        hold_listener(args.listen, args.name)
        return
    held = []
    queue = build(held)
    print(json.dumps({"expected": expected()}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[:1] == ["overflow"]:
            for _ in range(int(command[1])):
                client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                client.setblocking(False)
                try:
                    client.connect(("127.0.0.1", PORT_QUEUE))
                except BlockingIOError:
                    pass
                held.append(client)
            print("done", flush=True)
    del queue


if __name__ == "__main__":
    main()
