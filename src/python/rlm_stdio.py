"""Entry point of the rlm-web runtime in a remote sandbox.

Runs rlm_runtime unchanged behind a JSON-lines loop: the proxy writes one command per
line on stdin, this loop writes one reply per command on stdout. While a cell runs, the
runtime's stdio transport writes sub-call requests on the same stdout and blocks on stdin
for the page's answer.

Protocol lines and user output never mix: the protocol keeps private duplicates of file
descriptors 0 and 1, fd 1 is pointed at stderr (so print()s, os.write(1, ...) and child
processes cannot corrupt the protocol) and fd 0 at /dev/null (so input() cannot eat it).

The message types are written down, with their fields, in src/protocol/stdio.ts. In short:

Commands (stdin):   {"id": 1, "cmd": "execute", "code": "..."}
                    {"id": 2, "cmd": "context_begin", "index": 0, "kind": "text"}
                    {"cmd": "context_chunk", "data": "<base64>"}       (no reply)
                    {"id": 3, "cmd": "context_end"}      (or context_abort)
                    {"id": 4, "cmd": "context_file", "index": 0, "kind": "text",
                     "paths": ["/tmp/rlm-web-contexts/<uuid>", ...]}   (files the proxy streamed
                     in through the provider's file API; deleted once read)
                    {"id": 5, "cmd": "context_abort", "prefix": "/tmp/rlm-web-contexts/<uuid>"}
                    set_variable {name, value_json, reserved}, register_tool {name, kind,
                    value_json}, resolve_variable {name}, reset, ping
Replies (stdout):   {"type": "ready", "pid": ..., "python": "3.11.2"}  (once, at start)
                    {"type": "result", "id": 1, "value": ...}
                    {"type": "error", "id": 1, "error": "...", "error_type": "ValueError"}
                    {"type": "request", "request": {...}}   (from the runtime's transport)
                    {"type": "output", "stream": "stdout", "text": "..."}  (a running cell's
                     output as it is printed, throttled; no reply)

The cell's code runs in this process and can reach the protocol descriptor anyway: the proxy
treats every line as hostile, caps line length and ends a sandbox that exceeds it. A cell's
printed output is capped by the runtime (rlm_runtime.MAX_OUTPUT_CHARS per stream).
"""

import base64
import glob
import io
import json
import os
import sys

import rlm_runtime


def _protocol_streams():
    in_fd = os.dup(0)
    out_fd = os.dup(1)
    sys.stdout.flush()
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    proto_in = io.open(in_fd, "r", encoding="utf-8", newline="\n")
    proto_out = io.open(out_fd, "w", encoding="utf-8", newline="\n")
    return proto_in, proto_out


UPLOAD_DIR = "/tmp/rlm-web-contexts/"


class _Handover:
    """Gives bytes to Runtime.load_context without keeping them: its to_bytes() hands them
    over, so they are freed as soon as they are decoded rather than when the command ends."""

    def __init__(self, data):
        self._data = data

    def to_bytes(self):
        data, self._data = self._data, None
        return data


def load_context_files(runtime, index, kind, paths):
    """Loads context_<index> from the files (parts, in order) the proxy streamed into the
    sandbox: read into one buffer of the exact size, each file deleted once read."""
    total = sum(os.path.getsize(path) for path in paths)
    data = bytearray(total)
    view = memoryview(data)
    filled = 0
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while filled < total:
                n = f.readinto(view[filled:])
                if not n:
                    break
                filled += n
        os.unlink(path)
    view.release()
    if filled != total:
        raise ValueError("a context file changed while it was being read")
    handover = _Handover(data)
    del data
    return runtime.load_context(index, handover, kind)


def remove_uploads(prefix):
    """Deletes the files of an upload that did not finish."""
    if not prefix.startswith(UPLOAD_DIR) or "/.." in prefix:
        return
    for path in glob.glob(glob.escape(prefix) + "*"):
        os.unlink(path)


class Loop:
    def __init__(self, proto_in, proto_out):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.runtime = rlm_runtime.Runtime(rlm_runtime.make_stdio_transport(proto_in, proto_out), output=self.output)
        self.upload = None

    def send(self, message):
        self.proto_out.write(json.dumps(message) + "\n")
        self.proto_out.flush()

    def output(self, stream, text):
        self.send({"type": "output", "stream": stream, "text": text})

    def handle(self, message):
        cmd = message["cmd"]
        rt = self.runtime
        if cmd == "context_chunk":
            if self.upload is not None:
                self.upload["data"].extend(base64.b64decode(message["data"]))
            return None
        if cmd == "execute":
            return rt.execute(message["code"])
        if cmd == "context_begin":
            self.upload = {"index": int(message["index"]), "kind": message.get("kind", "text"), "data": bytearray()}
            return True
        if cmd == "context_abort":
            self.upload = None
            if message.get("prefix"):
                remove_uploads(message["prefix"])
            return True
        if cmd == "context_file":
            return load_context_files(rt, int(message["index"]), message.get("kind", "text"), list(message["paths"]))
        if cmd == "context_end":
            upload, self.upload = self.upload, None
            if upload is None:
                raise ValueError("context_end without context_begin")
            return rt.load_context(upload["index"], _Handover(upload.pop("data")), upload["kind"])
        if cmd == "set_variable":
            rt.set_variable_json(message["name"], message["value_json"], bool(message.get("reserved")))
            return True
        if cmd == "register_tool":
            rt.register_tool(message["name"], message["kind"], message.get("value_json"))
            return True
        if cmd == "resolve_variable":
            return rt.resolve_variable(message["name"])
        if cmd == "reset":
            self.upload = None
            rt.reset()
            return True
        if cmd == "ping":
            return True
        raise ValueError("unknown command %r" % cmd)

    def run(self):
        self.send({"type": "ready", "pid": os.getpid(), "python": sys.version.split()[0]})
        while True:
            try:
                line = self.proto_in.readline()
            except KeyboardInterrupt:
                continue  # an interrupt that arrived after its cell had finished
            if not line:
                return
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue
            # A late answer to a sub-call of an interrupted cell has no "cmd": drop it.
            if not isinstance(message, dict) or "cmd" not in message:
                continue
            ident = message.get("id")
            try:
                value = self.handle(message)
            except KeyboardInterrupt:
                if ident is not None:
                    self.send({"type": "error", "id": ident, "error": "interrupted", "error_type": "KeyboardInterrupt"})
                continue
            except Exception as exc:  # the proxy gets every failure as a reply
                if ident is not None:
                    self.send({"type": "error", "id": ident, "error": str(exc), "error_type": type(exc).__name__})
                continue
            if ident is not None:
                self.send({"type": "result", "id": ident, "value": value})


def main():
    proto_in, proto_out = _protocol_streams()
    Loop(proto_in, proto_out).run()


if __name__ == "__main__":
    main()
