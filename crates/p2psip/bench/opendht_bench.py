#!/usr/bin/python3
"""OpenDHT side of `p2psip bench overlay`: N dhtnode processes + 2 in-process client nodes.

Adapted from the project's OpenDHT loopback baseline (same method, same defaults):
N `dhtnode -s -U` processes bootstrapping from the first, two extra OpenDHT nodes in
this process -- A does the puts, B the gets (a node other than the putter, so gets
are not answered from A's local copy) -- sequential put then get of K keys with
random values of --value-size bytes, RSS/PSS of every dhtnode process.
The one change from the baseline: SIGTERM ends the run through its cleanup, so the
caller can bound it in time without leaving dhtnode processes behind.

`p2psip bench overlay` embeds this file, writes it to its temporary directory and
runs it with /usr/bin/python3 (the Debian interpreter that sees python3-opendht),
inside `unshare -n` when permitted so that only lo exists.

Every loop is bounded in count and time; only the processes started here are
signalled, by PID. Requires the Debian packages dhtnode and python3-opendht.
"""
import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import opendht as dht

AF_INET = socket.AF_INET


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def summ(xs_ms):
    if not xs_ms:
        return {"n": 0}
    return {
        "n": len(xs_ms),
        "min_ms": round(min(xs_ms), 3),
        "median_ms": round(statistics.median(xs_ms), 3),
        "mean_ms": round(statistics.mean(xs_ms), 3),
        "p95_ms": round(pct(xs_ms, 95), 3),
        "p99_ms": round(pct(xs_ms, 99), 3),
        "max_ms": round(max(xs_ms), 3),
    }


def proc_mem_kib(pid):
    """(RSS KiB, PSS KiB) of one process, None if gone."""
    rss = pss = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def proc_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        # fields after ')' : state(0) ... utime(11) stime(12)
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def mem_summary(pids):
    rss, pss = [], []
    for p in pids:
        r, s = proc_mem_kib(p)
        if r is not None:
            rss.append(r)
        if s is not None:
            pss.append(s)
    out = {"alive": len(rss)}
    if rss:
        out.update({
            "rss_kib_median": statistics.median(rss),
            "rss_kib_max": max(rss),
            "rss_kib_sum": sum(rss),
        })
    if pss:
        out.update({
            "pss_kib_median": statistics.median(pss),
            "pss_kib_max": max(pss),
            "pss_kib_sum": sum(pss),
        })
    return out


def cpu_total(pids):
    return round(sum(c for c in (proc_cpu_s(p) for p in pids) if c is not None), 2)


def routing_nodes(runner):
    """IPv4 routing-table entries of a node: 'known/good'."""
    try:
        log = runner.getRoutingTablesLog(AF_INET)
    except Exception:
        return "?"
    n = g = 0
    for line in log.splitlines():
        s = line.strip()
        if s.startswith("Node "):
            n += 1
            if s.endswith("[good]"):
                g += 1
    return f"{n}/{g}"


def run_ops(kind, keys, start_fn, concurrency, op_timeout, phase_deadline):
    """Run len(keys) async ops with bounded concurrency.

    start_fn(i, rec, finish) starts op i; rec is a dict it may fill;
    finish(rec) must be called exactly once from the callback.
    Returns list of records.
    """
    recs = [None] * len(keys)
    sem = threading.BoundedSemaphore(concurrency)
    lock = threading.Lock()
    pending = {}

    def make_finish(i):
        def finish(rec):
            with lock:
                if rec.get("_finished"):
                    return
                rec["_finished"] = True
                rec["t_done"] = time.perf_counter()
                pending.pop(i, None)
            sem.release()
        return finish

    for i in range(len(keys)):
        now = time.perf_counter()
        if now > phase_deadline:
            print(f"[{kind}] phase deadline hit at op {i}", flush=True)
            break
        # wait for a slot, but also expire ops that overran op_timeout
        while not sem.acquire(timeout=0.05):
            now = time.perf_counter()
            with lock:
                stale = [j for j, r in pending.items() if now - r["t0"] > op_timeout]
            for j in stale:
                r = recs[j]
                with lock:
                    if r.get("_finished"):
                        continue
                    r["_finished"] = True
                    r["timed_out"] = True
                    pending.pop(j, None)
                sem.release()
            if now > phase_deadline:
                break
        else:
            rec = {"i": i, "t0": time.perf_counter()}
            recs[i] = rec
            with lock:
                pending[i] = rec
            start_fn(i, rec, make_finish(i))
            continue
        print(f"[{kind}] phase deadline hit while waiting at op {i}", flush=True)
        break

    # drain
    drain_deadline = min(phase_deadline, time.perf_counter() + op_timeout) + 0.5
    while time.perf_counter() < drain_deadline:
        with lock:
            if not pending:
                break
        time.sleep(0.02)
    with lock:
        for j, r in list(pending.items()):
            if not r.get("_finished"):
                r["_finished"] = True
                r["timed_out"] = True
        pending.clear()
    return [r for r in recs if r is not None]


def _terminate(signum, frame):
    raise SystemExit(f"signal {signum}")


def main():
    signal.signal(signal.SIGTERM, _terminate)
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--base-port", type=int, default=42000)
    ap.add_argument("--netid", type=int, default=4242)
    ap.add_argument("--value-size", type=int, default=200,
                    help="bytes per value (a SIP contact/registration record is ~100-300 B)")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds after last node start")
    ap.add_argument("--spawn-gap", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--op-timeout", type=float, default=15.0)
    ap.add_argument("--phase-timeout", type=float, default=600.0)
    ap.add_argument("--no-rate-limit", action="store_true", default=True)
    ap.add_argument("--out", default=None, help="write JSON results here")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kill-frac", type=float, default=0.0,
                    help="after the put phase, SIGKILL this fraction of our dhtnode PIDs (crude churn)")
    ap.add_argument("--kill-wait", type=float, default=0.0,
                    help="seconds to wait after the kills before the get phase")
    args = ap.parse_args()

    assert 1 <= args.nodes <= 500
    assert 1 <= args.keys <= 100000
    random.seed(args.seed)
    t_script = time.perf_counter()
    results = {"config": vars(args).copy(), "opendht": "2.4.12 (Debian dhtnode/python3-opendht)",
               "nproc": os.cpu_count(), "loadavg_start": os.getloadavg()}
    try:
        with open("/proc/net/dev") as f:  # per network namespace
            results["netns_interfaces"] = [l.split(":")[0].strip() for l in f.readlines()[2:]]
    except OSError:
        pass
    procs = []
    clients = []
    devnull = open(os.devnull, "wb")
    try:
        # ---- 1. start N dhtnode processes -------------------------------------------------
        t0 = time.perf_counter()
        for i in range(args.nodes):
            port = args.base_port + i
            cmd = ["dhtnode", "-s", "-n", str(args.netid), "-p", str(port)]
            if args.no_rate_limit:
                cmd.append("-U")
            if i > 0:
                # every node bootstraps via node 0 (dhtnode takes a single -b)
                cmd += ["-b", f"127.0.0.1:{args.base_port}"]
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=devnull, stderr=devnull)
            procs.append(p)
            time.sleep(args.spawn_gap)
        pids = [p.pid for p in procs]
        results["spawn_s"] = round(time.perf_counter() - t0, 2)
        print(f"started {len(pids)} dhtnode processes in {results['spawn_s']} s", flush=True)

        # ---- 2. two client nodes in this process, bound to 127.0.0.1 -----------------------
        def mk_client(port):
            cfg = dht.DhtConfig()
            cfg.setNetwork(args.netid)
            cfg.setRateLimit(-1, -1)
            r = dht.DhtRunner()
            r.run(port=port, ipv4="127.0.0.1", config=cfg)
            r.bootstrap("127.0.0.1", str(args.base_port))
            r.bootstrap("127.0.0.1", str(args.base_port + random.randrange(args.nodes)))
            return r

        A = mk_client(args.base_port + args.nodes)      # putter
        B = mk_client(args.base_port + args.nodes + 1)  # getter
        clients = [A, B]

        # ---- 3. warm-up (bounded) ----------------------------------------------------------
        wu_end = time.perf_counter() + args.warmup
        while time.perf_counter() < wu_end:
            time.sleep(min(5.0, max(0.0, wu_end - time.perf_counter())))
            print(f"  warmup: routing-table nodes known/good A={routing_nodes(A)} B={routing_nodes(B)}", flush=True)
        results["routing_nodes_after_warmup"] = {"A": routing_nodes(A), "B": routing_nodes(B)}
        results["mem_after_warmup"] = mem_summary(pids)
        results["cpu_s_dhtnodes_after_warmup"] = cpu_total(pids)
        alive = sum(1 for p in procs if p.poll() is None)
        results["dhtnodes_alive_after_warmup"] = alive
        print(f"warmup done; alive={alive}; mem={results['mem_after_warmup']}", flush=True)

        # ---- 4. puts from A -------------------------------------------------------------------
        nonce = "%016x" % random.getrandbits(64)
        keys = [dht.InfoHash.get(f"sip:user{i}-{nonce}@bench.invalid") for i in range(args.keys)]
        vals = [bytes(random.getrandbits(8) for _ in range(args.value_size)) for _ in range(args.keys)]

        def start_put(i, rec, finish):
            def done(ok, nodes):
                rec["ok"] = bool(ok)
                rec["nodes"] = len(nodes) if nodes is not None else 0
                finish(rec)
            A.put(keys[i], dht.Value(vals[i]), done_cb=done)

        cpu0 = cpu_total(pids)
        A.getNodeMessageStats()  # reading resets OpenDHT's counters
        tp = time.perf_counter()
        put_recs = run_ops("put", keys, start_put, args.concurrency, args.op_timeout,
                           time.perf_counter() + args.phase_timeout)
        put_wall = time.perf_counter() - tp
        put_lat = [(r["t_done"] - r["t0"]) * 1000 for r in put_recs if r.get("ok") and "t_done" in r]
        results["put"] = {
            "attempted": len(put_recs),
            "ok": sum(1 for r in put_recs if r.get("ok")),
            "failed": sum(1 for r in put_recs if r.get("_finished") and not r.get("ok") and not r.get("timed_out")),
            "timed_out": sum(1 for r in put_recs if r.get("timed_out")),
            "latency_ok": summ(put_lat),
            "wall_s": round(put_wall, 2),
            "ops_per_s": round(len(put_recs) / put_wall, 1) if put_wall > 0 else None,
            "cpu_s_dhtnodes": round(cpu_total(pids) - cpu0, 2),
            "nodes_acked_median": statistics.median([r.get("nodes", 0) for r in put_recs]) if put_recs else None,
            # OpenDHT order is [ping, find, get, listen, put]; counters reset on read
            "putter_msgs_sent_per_op_[ping,find,get,listen,put]":
                [round(b / max(1, len(put_recs)), 2) for b in A.getNodeMessageStats()],
        }
        print("PUT", json.dumps(results["put"]), flush=True)

        time.sleep(2.0)
        # keys that B happens to store itself (B is a full DHT node and may be a replica)
        try:
            slog = B.getStorageLog()
        except Exception:
            slog = ""
        local_at_b = set(i for i, k in enumerate(keys) if str(k) in slog)
        results["keys_stored_at_getter"] = len(local_at_b)

        if args.kill_frac > 0:
            victims = random.sample(procs, int(round(args.kill_frac * len(procs))))
            for p in victims:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
            results["killed_dhtnodes"] = len(victims)
            print(f"killed {len(victims)} dhtnode processes; waiting {args.kill_wait} s", flush=True)
            time.sleep(max(0.0, min(args.kill_wait, 600.0)))

        # ---- 5. gets from B ------------------------------------------------------------------
        def start_get(i, rec, finish):
            want = vals[i]

            def got(v):
                if "t_first" not in rec and v.data == want:
                    rec["t_first"] = time.perf_counter()
                    rec["found"] = True
                return True

            def done(ok, nodes):
                rec["ok"] = bool(ok)
                finish(rec)
            B.get(keys[i], get_cb=got, done_cb=done)

        cpu0 = cpu_total(pids)
        B.getNodeMessageStats()  # reset counters
        tg = time.perf_counter()
        get_recs = run_ops("get", keys, start_get, args.concurrency, args.op_timeout,
                           time.perf_counter() + args.phase_timeout)
        get_wall = time.perf_counter() - tg
        first = [(r["t_first"] - r["t0"]) * 1000 for r in get_recs if r.get("found")]
        first_remote = [(r["t_first"] - r["t0"]) * 1000 for r in get_recs
                        if r.get("found") and r["i"] not in local_at_b]
        done_lat = [(r["t_done"] - r["t0"]) * 1000 for r in get_recs if "t_done" in r and not r.get("timed_out")]
        results["get"] = {
            "attempted": len(get_recs),
            "found_correct_value": sum(1 for r in get_recs if r.get("found")),
            "found_remote_only": sum(1 for r in get_recs if r.get("found") and r["i"] not in local_at_b),
            "remote_attempted": sum(1 for r in get_recs if r["i"] not in local_at_b),
            "done_ok": sum(1 for r in get_recs if r.get("ok")),
            "timed_out": sum(1 for r in get_recs if r.get("timed_out")),
            "first_value_latency": summ(first),
            "first_value_latency_remote_keys": summ(first_remote),
            "search_done_latency": summ(done_lat),
            "wall_s": round(get_wall, 2),
            "ops_per_s": round(len(get_recs) / get_wall, 1) if get_wall > 0 else None,
            "cpu_s_dhtnodes": round(cpu_total(pids) - cpu0, 2),
            "getter_msgs_sent_per_op_[ping,find,get,listen,put]":
                [round(b / max(1, len(get_recs)), 2) for b in B.getNodeMessageStats()],
        }
        print("GET", json.dumps(results["get"]), flush=True)

        # ---- 6. re-get (sequential, from B) every key the get phase did not find ----------
        missing = [r["i"] for r in get_recs if not r.get("found")]
        if missing:
            idx = sorted(missing)
            results["get_missing_index_quartiles"] = [idx[0], idx[len(idx) // 4], idx[len(idx) // 2],
                                                      idx[3 * len(idx) // 4], idx[-1]]
            results["get_missing_done_ok"] = sum(1 for r in get_recs if not r.get("found") and r.get("ok"))
            sub = missing[:200]
            re_recs = run_ops("reget", sub, lambda j, rec, fin: start_get(sub[j], rec, fin), 1,
                              args.op_timeout, time.perf_counter() + 120)
            results["reget_sequential"] = {"attempted": len(re_recs),
                                           "found": sum(1 for r in re_recs if r.get("found"))}
            print("REGET", json.dumps(results["reget_sequential"]), results["get_missing_index_quartiles"], flush=True)

        results["mem_after_ops"] = mem_summary(pids)
        results["dhtnodes_alive_end"] = sum(1 for p in procs if p.poll() is None)
        results["client_process_rss_kib"] = proc_mem_kib(os.getpid())[0]
        print("MEM", json.dumps(results["mem_after_ops"]), flush=True)
    finally:
        # ---- cleanup: only our own nodes / PIDs ----------------------------------------------
        for c in clients:
            try:
                c.join()
            except Exception:
                pass
        for p in procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        results["total_s"] = round(time.perf_counter() - t_script, 1)
        results["loadavg_end"] = os.getloadavg()
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
        print("RESULT", json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
