# The Pyodide side of the REPL worker (src/worker/worker.ts): wraps rlm_runtime.Runtime for
# the page, one Runtime per tenant (a namespace; see WorkerAPI.open in src/protocol/worker.ts).
# The worker evaluates this file with runPython; its value is its last line, the function
# _rlm_make(call, jspi, output, tenant, read_target), which returns the functions the worker
# calls for that tenant. `output(stream, text)` posts a running cell's output to the page
# without waiting. `call` sends a request to the page and returns a PackedReply
# (src/protocol/worker.ts): a Promise on the JSPI bridge (awaited with run_sync), the reply
# itself on the SharedArrayBuffer bridge. `read_target()` names the tenant the pending
# interrupt is meant for (None without an interrupt buffer).

import json, random, signal, sys
sys.path.insert(0, "/rlm")
import rlm_runtime

# Pyodide starts `random` from one fixed state (and a memory snapshot keeps it): every REPL
# would draw the same numbers. Seed it from the browser's crypto (os.urandom).
random.seed()

from js import Object
from pyodide.ffi import to_js

# Which tenant's code holds the interpreter, and interrupts that arrived for a tenant while
# another one ran (raised when it resumes).
_holder = {"tenant": None, "read_target": None}
_pending_interrupts = set()


def _rlm_on_interrupt(signum, frame):
    read = _holder["read_target"]
    target = read() if read is not None else None
    if target is None or target == _holder["tenant"]:
        raise KeyboardInterrupt
    _pending_interrupts.add(target)


signal.signal(signal.SIGINT, _rlm_on_interrupt)


def _rlm_unpack(packed):
    # Query results arrive as one UTF-8 buffer plus byte lengths: bytes.decode is native,
    # while converting a JS string to str costs milliseconds per 500 KB.
    if packed.kind == "results":
        data = packed.bytes.to_bytes()
        out, pos = [], 0
        for n in packed.lengths.to_py():
            out.append(data[pos:pos + n].decode("utf-8"))
            pos += n
        return {"results": out}
    return json.loads(packed.json)


def _rlm_make(call, jspi, output, tenant, read_target):
    _holder["read_target"] = read_target
    if jspi:
        from pyodide.ffi import run_sync
        def transport(req):
            return _rlm_unpack(run_sync(call(to_js(req, dict_converter=Object.fromEntries))))
    else:
        def transport(req):
            return _rlm_unpack(call(to_js(req, dict_converter=Object.fromEntries)))

    def enter(starting):
        if starting:
            # An interrupt meant for this tenant's previous cell must not hit this one.
            _pending_interrupts.discard(tenant)
        _holder["tenant"] = tenant
        if tenant in _pending_interrupts:
            _pending_interrupts.discard(tenant)
            raise KeyboardInterrupt

    rt = rlm_runtime.Runtime(transport, output=output, enter=enter)

    def write_chunk(buf, offset, chunk):
        chunk.assign_to(memoryview(buf)[offset:offset + chunk.byteLength])

    def close():
        _pending_interrupts.discard(tenant)
        rt.close()

    return {
        "execute": lambda code: json.dumps(rt.execute(code)),
        "loadContext": lambda i, data, kind: json.dumps(rt.load_context(i, data, kind)),
        "allocate": lambda n: bytearray(n),
        "writeChunk": write_chunk,
        "setVariable": rt.set_variable_json,
        "registerTool": rt.register_tool,
        "resolveVariable": rt.resolve_variable,
        "reset": rt.reset,
        "close": close,
    }

# The value of this file for runPython.
_rlm_make
