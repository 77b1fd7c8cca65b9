# The Pyodide side of the REPL worker (src/worker/worker.ts): wraps rlm_runtime.Runtime for
# the page, one Runtime per tenant (a namespace; see WorkerAPI.open in src/protocol/worker.ts).
# The worker evaluates this file with runPython; its value is its last line, the function
# _rlm_make(call, query, jspi, output, tenant, read_target), which returns the functions the
# worker calls for that tenant. `call(request)` sends a request (a JS object) to the page,
# `query(op, prompts, model, schema)` a sub-call built from plain arguments; both return the
# reply as the page encoded it (a SharedPayload of src/protocol/worker.ts): a Promise on the
# JSPI bridge (awaited with run_sync), the payload itself on the SharedArrayBuffer bridge.
# `output(stream, text)` posts a running cell's output to the page without waiting.
# `read_target()` names the tenant the pending interrupt is meant for (None without an
# interrupt buffer).

import json, random, signal, sys
from itertools import accumulate
sys.path.insert(0, "/rlm")
import rlm_runtime

# Pyodide starts `random` from one fixed state (and a memory snapshot keeps it): every REPL
# would draw the same numbers. Seed it from the browser's crypto (os.urandom).
random.seed()

from js import Object
from pyodide.ffi import to_js

# Payload formats, as numbered in src/protocol/worker.ts.
_FORMAT_RESULTS = 1

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


def _rlm_decode(payload):
    # Query results arrive as UTF-8 bytes with a header of byte lengths: one native decode
    # (converting a JS string to str costs milliseconds per 500 KB), then slices.
    data = payload.to_bytes()
    if int.from_bytes(data[:4], "little") != _FORMAT_RESULTS:
        return json.loads(data[4:])
    count = int.from_bytes(data[4:8], "little")
    head = 8 + 4 * count
    body = memoryview(data)[head:]
    if count == 1:
        return {"results": [str(body, "utf-8")]}
    offsets = list(accumulate(memoryview(data)[8:head].cast("i"), initial=0))
    text = str(body, "utf-8")
    if len(text) == len(body):
        # ASCII only: byte offsets are character offsets.
        return {"results": [text[a:b] for a, b in zip(offsets, offsets[1:])]}
    return {"results": [str(body[a:b], "utf-8") for a, b in zip(offsets, offsets[1:])]}


def _rlm_send(call, query, req):
    if req["op"] == "tool":
        return call(to_js(req, dict_converter=Object.fromEntries))
    schema = req.get("schema")
    return query(req["op"], to_js(req["prompts"]), req["model"], None if schema is None else to_js(schema, dict_converter=Object.fromEntries))


def _rlm_make(call, query, jspi, output, tenant, read_target):
    _holder["read_target"] = read_target
    if jspi:
        from pyodide.ffi import run_sync
        def transport(req):
            return _rlm_decode(run_sync(_rlm_send(call, query, req)))
    else:
        def transport(req):
            return _rlm_decode(_rlm_send(call, query, req))

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
