"""minsky side by side with optillm and the next model up, on one machine (issue 27).

    python benchmarks/peers.py run                # everything, resumable: rerun to go on
    python benchmarks/peers.py run --stages 20,50,100 --only gsm8k
    python benchmarks/peers.py report             # the tables and the two frontier plots

`run` does, one setup at a time and nothing else on the machine:

1. a virtualenv of its own for optillm 0.4.0 (`benchmarks/.peers/venv`), installed with
   `--no-deps` plus only what its OpenAI-client path imports. LiteLLM stays out (optillm
   starts without it when an OpenAI-compatible base URL is given); the script refuses to
   go on if a `litellm` distribution or any `.pth` file other than setuptools' is there:
   LiteLLM 1.82.7–1.82.8 on PyPI shipped a credential stealer as a `.pth` file;
2. the embedded GGUF served by llama-cpp-python's own OpenAI server (`llama_cpp.server`,
   from minsky's environment: the same llama.cpp build minsky runs, 2 threads), behind
   the metering proxy of `peers_proxy.py` (server-side tokens per call; `n` honoured);
3. optillm pointed at the proxy, each approach asked as `model="<approach>-qwen0.5b"` by
   `minsky eval --society openai:URL#<approach>-qwen0.5b`: the same prompt `single`'s
   member is sent, one question at a time, scored by minsky's answer extraction;
4. minsky's own setups: the rows of the reporting evaluations already made on this
   machine (`benchmarks/results/eval-*.jsonl`) where they cover the cases; `consensus` on
   the 1.5B model is run here (`peers/gsm8k100-1.5b.jsonl`).

Results are appended per question (`benchmarks/results/peers/*.jsonl`), so a stopped run
resumes where it was. Approaches that run model-written code with Python's `exec`
(`executecode`, `coc`, `z3`) are never run: minsky does not execute model text.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OUT = RESULTS / "peers"
VENV = ROOT / "benchmarks" / ".peers" / "venv"
DATA = ROOT.parent / "shared" / "data"
BENCHES = {"gsm8k": DATA / "gsm8k" / "train.jsonl",
           "arc": DATA / "arc" / "ARC-Challenge-validation.jsonl"}
OPTILLM = "optillm==0.4.0"
# what optillm 0.4.0's server imports at start-up on the OpenAI-client path (read from
# its modules' imports); torch, transformers, gradio, spacy, litellm... are not needed
OPTILLM_DEPS = ["flask", "openai", "httpx", "numpy", "networkx", "z3-solver<=4.15.4.0",
                "sympy", "aiohttp", "pyyaml", "cerebras_cloud_sdk", "requests",
                "math-verify"]
# the order is the order of priority: cheap approaches first, the searches after
APPROACHES = {
    "gsm8k": ["none", "re2", "cot_reflection", "self_consistency", "moa", "rto", "bon",
              "leap", "plansearch", "mcts"],
    "arc": ["none", "re2", "cot_reflection", "self_consistency", "moa"],
}
MODEL = "qwen0.5b"
THREADS = 2
N_CTX = 8192
PORTS = {"llama": 8731, "meter": 8732, "optillm": 8733}
CASES = 100


def sh(cmd: list[str], check: bool = True, **kw: object) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=check, **kw).returncode  # type: ignore[call-overload]


def make_venv() -> Path:
    """optillm's own virtualenv, without LiteLLM and without unknown `.pth` files."""
    python = VENV / "bin" / "python"
    if not python.exists():
        sh([sys.executable, "-m", "venv", str(VENV)])
        sh([str(python), "-m", "pip", "install", "-q", "--no-deps", OPTILLM])
        sh([str(python), "-m", "pip", "install", "-q", *OPTILLM_DEPS])
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True).stdout
    names = {p["name"].lower(): p["version"] for p in json.loads(listed)}
    if "litellm" in names:
        sys.exit(f"refusing: litellm {names['litellm']} is in {VENV}; optillm does not "
                 "need it on the OpenAI-client path")
    pth = [p for p in VENV.glob("lib/python*/site-packages/*.pth")
           if p.name != "distutils-precedence.pth"]
    if pth:
        sys.exit(f"refusing: unexpected .pth files in {VENV}: {[p.name for p in pth]}")
    print(f"optillm {names.get('optillm')} in {VENV}; no litellm, no foreign .pth",
          flush=True)
    return python


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str, limit_s: float) -> None:
    import httpx

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.terminate()
    sys.exit(f"{what} not ready at {url} after {limit_s:.0f} s")


def model_path() -> Path:
    from minsky.models import resolve_gguf

    return resolve_gguf(MODEL)


def start_servers(python: Path, log_dir: Path) -> tuple[list[subprocess.Popen[bytes]], object]:
    sys.path.insert(0, str(Path(__file__).parent))
    from peers_proxy import Meter, serve

    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        sys.exit("llama-cpp-python's server is missing from minsky's environment: "
                 "pip install 'llama-cpp-python[server]' (the same build minsky uses)")
    log_dir.mkdir(parents=True, exist_ok=True)
    llama = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()),
         "--model_alias", MODEL, "--n_threads", str(THREADS), "--n_ctx", str(N_CTX),
         "--host", "127.0.0.1", "--port", str(PORTS["llama"])],
        stdout=(log_dir / "llama-server.log").open("ab"), stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{PORTS['llama']}/v1/models", llama, "llama_cpp.server",
               300)
    meter = Meter(f"http://127.0.0.1:{PORTS['llama']}/v1", OUT / "upstream-calls.jsonl")
    serve(meter, PORTS["meter"])
    # OPENAI_API_KEY makes optillm take its OpenAI-client path (no LiteLLM fallback)
    env = {**os.environ, "OPENAI_API_KEY": "sk-local"}
    optillm = subprocess.Popen(
        [str(python.parent / "optillm"), "--base-url", f"http://127.0.0.1:{PORTS['meter']}/v1",
         "--port", str(PORTS["optillm"]), "--host", "127.0.0.1"],
        stdout=(log_dir / "optillm.log").open("ab"), stderr=subprocess.STDOUT, env=env,
        cwd=str(log_dir))
    wait_ready(f"http://127.0.0.1:{PORTS['optillm']}/health", optillm, "optillm", 180)
    return [optillm, llama], meter


def evaluate(bench: str, society: list[str], out: Path, first: int,
             extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
    """The first `first` cases of the reporting sample (`--limit CASES --seed 0`)."""
    # exit 1: some cases failed (kept apart, never scored; the next run retries them)
    rc = sh([sys.executable, "-m", "minsky", "eval", "--bench", str(BENCHES[bench]), *society,
             "--limit", str(CASES), "--seed", "0",
             "--first", str(first), "--threads", str(THREADS), "--out", str(out),
             *(extra or [])], check=False, env={**os.environ, **(env or {})})
    if rc not in (0, 1):
        sys.exit(f"minsky eval stopped with exit code {rc}")


def peer_society(approach: str) -> str:
    return f"openai:http://127.0.0.1:{PORTS['optillm']}/v1#{approach}-{MODEL}"


def run(args: argparse.Namespace) -> None:
    # SIGTERM ends the run as Ctrl-C does: the servers are stopped, the rows kept
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    OUT.mkdir(parents=True, exist_ok=True)
    benches = [b for b in BENCHES if not args.only or b in args.only]
    stages = sorted({int(s) for s in args.stages.split(",")})
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if not args.minsky_only:
            python = make_venv()
            procs, meter = start_servers(python, OUT / "logs")
        for n in stages:
            for bench in benches:
                for approach in APPROACHES[bench] if not args.minsky_only else []:
                    if args.approaches and approach not in args.approaches:
                        continue
                    meter.label = f"{bench}:{approach}"  # type: ignore[attr-defined]
                    # one question at a time: the quiet machine's seconds per question,
                    # and upstream calls attributable to the question in flight
                    evaluate(bench, ["--society", peer_society(approach)],
                             OUT / f"{bench}{CASES}-optillm.jsonl", n,
                             ["--concurrency", "1"], {"MINSKY_OPENAI_TIMEOUT_S": "1800"})
        if not args.peers_only and "gsm8k" in benches:
            for p in procs:
                p.terminate()
            procs = []
            evaluate("gsm8k", ["--society", "consensus", "--model", "qwen1.5b"],
                     OUT / f"gsm8k{CASES}-1.5b.jsonl", max(stages), ["--concurrency", "4"])
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run (or resume) every setup")
    r.add_argument("--stages", default=str(CASES),
                   help="comma-separated sample sizes, run in turn for every setup, so a "
                        "cut-short run has every setup on the same first cases")
    r.add_argument("--only", action="append", choices=sorted(BENCHES))
    r.add_argument("--approaches", nargs="*", help="only these optillm approaches")
    r.add_argument("--peers-only", action="store_true", help="skip minsky's 1.5B run")
    r.add_argument("--minsky-only", action="store_true", help="skip optillm")
    rep = sub.add_parser("report", help="the tables and the frontier plots")
    rep.add_argument("--plot-dir", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    else:
        from peers_report import report

        report(args.plot_dir)


if __name__ == "__main__":
    main()
