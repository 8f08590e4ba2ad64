"""Socket churn for soak tests: run inside a network namespace (harness.Workload.nsenter), it
opens loopback connections at --rate a second, IPv4 and IPv6 in turn, and ends each one of
four ways, so that every gather sees sockets come and go in every closing state:

  - reset (SO_LINGER 0): no TIME_WAIT
  - the client closes first: the client's side goes TIME_WAIT
  - the server closes first: the server's side goes TIME_WAIT
  - every --close-wait-every th connection: the client closes, the server's side sits in
    CLOSE_WAIT (owned by this process); every --close-wait-hold seconds the ones made in the
    period before last are closed together (so few gathers see one vanish mid-way)

and every --listener-every connections it opens a listening socket on a new port and closes it
--hold seconds later (a new listener, then a vanished one). With --cgroup it joins that cgroup
first, so that an owner search directed by the sockets' cgroup has only this process to walk.
Prints "ready" once the first listeners are up, "made N" at the end; stops at stdin EOF.
Python stdlib only.
"""

import argparse
import collections
import os
import select
import socket
import struct
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--hold", type=float, default=1.0)
    parser.add_argument("--listener-every", type=int, default=100)
    parser.add_argument("--close-wait-every", type=int, default=4)
    parser.add_argument("--close-wait-hold", type=float, default=1.0)
    parser.add_argument("--cgroup", help="a cgroup v2 directory to join first: the sockets are its")
    args = parser.parse_args()
    if args.cgroup:
        with open(os.path.join(args.cgroup, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))

    listeners = {}
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.bind((host, 0))
        listener.listen(4096)
        listeners[family] = (listener, listener.getsockname()[:2])
    held = collections.deque()  # (close at, [sockets]), in that order
    close_waits = collections.deque()
    print("ready", flush=True)

    made = 0
    start = time.monotonic()
    while True:
        # Paced by stdin: EOF ends the churn, and nothing else is read from it.
        wait = start + made / args.rate - time.monotonic()
        if select.select([sys.stdin], [], [], max(0.0, wait))[0] and not sys.stdin.read(1):
            break
        now = time.monotonic()
        for queue in (held, close_waits):
            while queue and queue[0][0] <= now:
                for s in queue.popleft()[1]:
                    s.close()
        family = (socket.AF_INET, socket.AF_INET6)[made % 2]
        listener, address = listeners[family]
        client = socket.socket(family, socket.SOCK_STREAM)
        client.connect(address)
        server, _ = listener.accept()
        if made % args.close_wait_every == args.close_wait_every - 1:
            client.close()
            # Closed a generation at a time: --close-wait-hold to twice that after they were
            # made, all in one go.
            generation = int((now - start) / args.close_wait_hold)
            close_waits.append((start + (generation + 2) * args.close_wait_hold, [server]))
        elif made % 3 == 0:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            server.close()
        elif made % 3 == 1:
            client.close()
            server.close()
        else:
            server.close()
            client.close()
        made += 1
        if made % args.listener_every == 0:
            extra = socket.socket(family, socket.SOCK_STREAM)
            extra.bind((address[0], 0))
            extra.listen(16)
            held.append((now + args.hold, [extra]))
    for _, sockets in list(held) + list(close_waits):
        for s in sockets:
            s.close()
    print(f"made {made}", flush=True)


if __name__ == "__main__":
    main()
