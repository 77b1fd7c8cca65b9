"""The rlm-web REPL runtime.

One module, shipped unchanged into every REPL: Pyodide in a Web Worker and, through a
stdio transport, remote sandboxes. It owns the user namespace and the helpers the root
model calls (llm_query, rlm_query, SHOW_VARS, FINAL_VAR, answer, custom tools). How a
sub-call request reaches the page is the transport's business: a callable that takes a
JSON-able dict and returns a JSON-able dict, synchronously.
"""

import ast
import builtins
import io
import itertools
import json
import linecache
import os
import shutil
import sys
import tempfile
import time
import traceback
import types

RESERVED_NAMES = (
    "context",
    "history",
    "llm_query",
    "llm_query_batched",
    "rlm_query",
    "rlm_query_batched",
    "SHOW_VARS",
    "FINAL_VAR",
    "answer",
)

_TRACEBACK_FRAMES = 4

# Set (reserved) by the page when the run has a schema: the answer then goes back as JSON.
STRUCTURED_ANSWER = "_rlm_structured_answer"

# Variable previews in cell results (the trajectory shows them): at most this many
# variables, this many characters each, a few items of each container.
_PREVIEW_VARIABLES = 100
_PREVIEW_CHARS = 200
_PREVIEW_ITEMS = 6


def preview(value):
    """A short text for a value: bounded work whatever its size, and no user __repr__ runs."""
    if type(value) is str:
        if len(value) <= _PREVIEW_CHARS:
            return value
        return "%s... [%d chars]" % (value[:_PREVIEW_CHARS], len(value))
    text = _short_repr(value, 2)
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."


def _short_repr(value, depth):
    kind = type(value)
    if value is None or kind in (bool, float, complex):
        return repr(value)
    if kind is int:
        bits = value.bit_length()
        return repr(value) if bits <= 256 else "<int of %d bits>" % bits
    if kind in (str, bytes, bytearray):
        head = repr(value[:40])
        return head + "..." if len(value) > 40 else head
    if kind in (list, tuple, set, frozenset, dict):
        if depth == 0 or not value:
            return "%s of %d" % (kind.__name__, len(value)) if value else repr(kind())
        items = itertools.islice(value.items() if kind is dict else value, _PREVIEW_ITEMS)
        if kind is dict:
            parts = ["%s: %s" % (_short_repr(k, depth - 1), _short_repr(v, depth - 1)) for k, v in items]
        else:
            parts = [_short_repr(v, depth - 1) for v in items]
        if len(value) > _PREVIEW_ITEMS:
            parts.append("... %d items" % len(value))
        opening, closing = {list: "[]", tuple: "()", dict: "{}"}.get(kind, "{}")
        if kind in (set, frozenset):
            opening = kind.__name__ + "({"
            closing = "})"
        if kind is tuple and len(value) == 1:
            closing = ",)"
        return opening + ", ".join(parts) + closing
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)):
        return "<%s %s>" % (kind.__name__[:60], value.__qualname__[:60])
    return "<%s object>" % kind.__name__[:60]


# What a cell's stdout and stderr each keep; the rest is counted, not stored, so a cell that
# prints gigabytes costs neither memory here nor bandwidth to the page.
MAX_OUTPUT_CHARS = 4_000_000


# Live output: while a cell runs, what its streams keep goes to the runtime's output sink as
# it is written, throttled: a burst of up to OUTPUT_BURST forwards, then at most one per
# OUTPUT_FORWARD_SECONDS; what is held back goes with the next forward, before a sub-call, or
# when the cell ends.
OUTPUT_FORWARD_SECONDS = 0.05
OUTPUT_BURST = 8


class _LiveForward:
    """Passes a running cell's kept output to `sink(stream, text)`, throttled. Only text within
    the streams' cap arrives here, so the sink gets a bounded amount; a sink that fails is not
    called again for this cell, and the cell goes on."""

    def __init__(self, sink):
        self._sink = sink
        self._pending = []
        self._tokens = float(OUTPUT_BURST)
        self._last = time.monotonic()

    def add(self, stream, text):
        if self._sink is None or not text:
            return
        if self._pending and self._pending[-1][0] == stream:
            self._pending[-1][1].append(text)
        else:
            self._pending.append((stream, [text]))
        now = time.monotonic()
        self._tokens = min(float(OUTPUT_BURST), self._tokens + (now - self._last) / OUTPUT_FORWARD_SECONDS)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            self.flush()

    def flush(self):
        pending, self._pending = self._pending, []
        sink = self._sink
        if sink is None or not pending:
            return
        try:
            for stream, pieces in pending:
                sink(stream, "".join(pieces))
        except Exception:
            self._sink = None


class _CappedOutput(io.StringIO):
    """A cell's sys.stdout / sys.stderr: keeps the first `limit` characters, counts the rest;
    what it keeps also goes to `live` (a _LiveForward) under the name `stream`."""

    def __init__(self, limit, live=None, stream="stdout"):
        super().__init__()
        self._room = limit
        self._limit = limit
        self._live = live
        self._stream = stream
        self.dropped = 0

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        n = len(s)
        if n <= self._room:
            self._room -= n
            written = super().write(s)
            if self._live is not None:
                self._live.add(self._stream, s)
            return written
        if self._room > 0:
            kept = s[: self._room]
            super().write(kept)
            if self._live is not None:
                self._live.add(self._stream, kept)
        self.dropped += n - self._room
        self._room = 0
        return n

    def text(self):
        value = self.getvalue()
        if self.dropped:
            value += "\n... [%d more characters dropped: the cell printed more than %d; print a smaller slice]\n" % (
                self.dropped,
                self._limit,
            )
        return value


class AnswerDict(dict):
    """The `answer` dict: the run ends once answer["ready"] is truthy."""

    def __init__(self):
        super().__init__(content="", ready=False)


class _Unset:
    pass


_UNSET = _Unset()


def _jsonable(value):
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError("%s is not JSON-serializable" % type(value).__name__)


class Runtime:
    def __init__(self, transport, max_output_chars=MAX_OUTPUT_CHARS, output=None, enter=None):
        """`output(stream, text)`, when given, receives a running cell's output as it is
        printed (throttled, within the cap); it must not block, and its failures are ignored.

        `enter(starting)`, when given, is called as this runtime's code takes the interpreter:
        when a cell starts (starting=True) and each time it resumes after a sub-call. Several
        runtimes can share one interpreter, each a namespace whose cells interleave at their
        sub-calls: on resuming, a cell takes back its output streams and working directory,
        and `enter` may raise KeyboardInterrupt for an interrupt that arrived meanwhile."""
        self._transport = transport
        self._output = output
        self._enter = enter
        self._streams = None
        self._sources = {}
        self._base_streams = (sys.stdout, sys.stderr)
        self._live = None
        self._max_output_chars = max_output_chars
        self._cell_count = 0
        self._final = _UNSET
        self._tool_names = []
        self._scaffold = {}
        self._base_modules = set(sys.modules)
        self._workdir = None
        self.ns = {}
        self.reset()

    def close(self):
        """Drop the namespace and its files (the runtime is not used afterwards)."""
        if self._workdir:
            if os.getcwd() == self._workdir:
                os.chdir("/")
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self.ns.clear()
        self._scaffold = {}
        self._sources.clear()

    # ---------------------------------------------------------------- namespace

    def reset(self):
        """Forget every user variable, tool, context, imported module and file."""
        for name in set(sys.modules) - self._base_modules:
            sys.modules.pop(name, None)
        if self._workdir:
            if os.getcwd() == self._workdir:
                os.chdir("/")
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir = tempfile.mkdtemp(prefix="rlm-")
        os.chdir(self._workdir)
        self.ns.clear()
        self.ns["__name__"] = "__main__"
        self.ns["__builtins__"] = builtins
        self._tool_names = []
        self._final = _UNSET
        self._scaffold = {
            "llm_query": self.llm_query,
            "llm_query_batched": self.llm_query_batched,
            "rlm_query": self.rlm_query,
            "rlm_query_batched": self.rlm_query_batched,
            "SHOW_VARS": self.show_vars,
            "FINAL_VAR": self.final_var,
            "answer": AnswerDict(),
        }
        self.ns.update(self._scaffold)
        self._sources.clear()

    def set_variable(self, name, value, reserved=False):
        """Bind a variable; reserved ones (contexts, history) are restored after each cell."""
        self.ns[name] = value
        if reserved:
            self._scaffold[name] = value

    def set_variable_json(self, name, text, reserved=False):
        self.set_variable(name, json.loads(text), reserved)

    def load_context(self, index, data, kind):
        """Bind context_<index> (and `context` for index 0) from UTF-8 bytes.

        `data` is bytes, a bytearray or anything with to_bytes() (a JS Uint8Array proxy);
        kind is "text" or "json".
        """
        if not isinstance(data, (bytes, bytearray)):
            data = data.to_bytes()
        text = data.decode("utf-8")
        del data
        value = json.loads(text) if kind == "json" else text
        del text
        self.set_variable("context_%d" % index, value, reserved=True)
        if index == 0:
            self.set_variable("context", value, reserved=True)
        return self._describe(value)

    def context_count(self):
        n = 0
        while ("context_%d" % n) in self.ns:
            n += 1
        return n

    @staticmethod
    def _describe(value):
        if isinstance(value, str):
            return {"type": "str", "length": len(value)}
        if isinstance(value, (list, dict)):
            return {"type": type(value).__name__, "length": len(value)}
        return {"type": type(value).__name__, "length": len(str(value))}

    def register_tool(self, name, kind, value_json=None):
        """Expose a custom tool: a page-side function (kind "function") or data ("data")."""
        if name in RESERVED_NAMES:
            raise ValueError("%r is a reserved name" % name)
        if kind == "function":
            value = self._make_tool(name)
        else:
            value = json.loads(value_json)
        self._tool_names.append(name)
        self.set_variable(name, value, reserved=(kind == "function"))

    def _make_tool(self, name):
        runtime = self

        def tool(*args, **kwargs):
            reply = runtime._request({"op": "tool", "name": name, "args": list(args), "kwargs": kwargs})
            if "error" in reply:
                raise RuntimeError("tool %s failed: %s" % (name, reply["error"]))
            return reply.get("value")

        tool.__name__ = name
        tool.__qualname__ = name
        return tool

    # ---------------------------------------------------------------- sub-calls

    def _request(self, request):
        # What the cell printed so far reaches the page before the cell waits for it.
        if self._live is not None:
            self._live.flush()
        try:
            reply = self._transport(request)
        finally:
            self._take_interpreter(False)
        if reply.get("interrupted"):
            raise KeyboardInterrupt
        return reply

    def _take_interpreter(self, starting):
        """While this runtime's cell was suspended in a sub-call, another namespace's cell may
        have run: take back the streams and the working directory before going on."""
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
        if self._workdir and (starting or self._enter is not None):
            os.chdir(self._workdir)
        if self._enter is not None:
            self._enter(starting)

    def _query(self, op, prompts, model, schema=None):
        for p in prompts:
            if not isinstance(p, str):
                raise TypeError("%s expects str prompts, got %s" % (op, type(p).__name__))
        request = {"op": op, "prompts": prompts, "model": model}
        if schema is not None:
            if not isinstance(schema, dict):
                raise TypeError("%s: schema must be a JSON Schema dict, got %s" % (op, type(schema).__name__))
            request["schema"] = schema
        reply = self._request(request)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        if schema is None:
            return reply["results"]
        # With a schema each result is the validated reply as JSON, or an "Error: ..." text.
        return [r if r.startswith("Error:") else json.loads(r) for r in reply["results"]]

    def llm_query(self, prompt, model=None, schema=None):
        """One call to a sub-model. Returns its text (with `schema`, the parsed value), or "Error: ..." if it failed."""
        return self._query("llm_query", [prompt], model, schema)[0]

    def llm_query_batched(self, prompts, model=None, schema=None):
        """Many independent sub-model calls, run concurrently; results in prompt order."""
        prompts = list(prompts)
        if not prompts:
            return []
        return self._query("llm_query", prompts, model, schema)

    def rlm_query(self, prompt, model=None, schema=None):
        """A child RLM on `prompt` (a plain sub-model call at the depth limit)."""
        return self._query("rlm_query", [prompt], model, schema)[0]

    def rlm_query_batched(self, prompts, model=None, schema=None):
        """Many child RLMs, run concurrently; results in prompt order."""
        prompts = list(prompts)
        if not prompts:
            return []
        return self._query("rlm_query", prompts, model, schema)

    # ---------------------------------------------------------------- helpers

    def _user_names(self):
        # context_N and history_N are listed (SHOW_VARS finds them); the helpers are not.
        hidden = set(RESERVED_NAMES) - {"context", "history"}
        hidden.update(self._tool_names)
        out = []
        for name, value in self.ns.items():
            if name.startswith("_") or name in hidden:
                continue
            if isinstance(value, types.ModuleType):
                continue
            out.append(name)
        return out

    def _previews(self, names):
        out = {}
        for name in names[:_PREVIEW_VARIABLES]:
            try:
                out[name] = preview(self.ns[name])
            except Exception:
                out[name] = "<no preview>"
        return out

    def show_vars(self):
        names = [n for n in self._user_names() if n != "answer"]
        if not names:
            return "No variables created yet. Use ```repl``` blocks to create variables."
        listing = ", ".join("%r: %s" % (n, type(self.ns[n]).__name__) for n in names)
        return "Available variables: {%s}" % listing

    def final_var(self, name):
        """Mark the variable called `name` (or, given a non-name value, that value) as the answer."""
        if isinstance(name, str) and name.strip().strip("'\"").isidentifier():
            key = name.strip().strip("'\"")
            if key not in self.ns:
                raise NameError(
                    "FINAL_VAR: variable %r not found. Create it in a repl block first, "
                    "or set answer['content'] and answer['ready'] = True." % key
                )
            value = self.ns[key]
        else:
            value = name
        self._final = value
        return str(value)

    def resolve_variable(self, name):
        """For FINAL_VAR written in the response text: the variable as an answer, or None."""
        key = name.strip().strip("'\"")
        if key in self.ns and not key.startswith("__"):
            return self._answer_text(self.ns[key])
        return None

    def _answer_text(self, value):
        """An answer as the page reads it: str(value), or JSON when the run has a schema."""
        if not self._scaffold.get(STRUCTURED_ANSWER):
            return str(value)
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False, default=_jsonable)
        except (TypeError, ValueError, RecursionError):
            return str(value)

    # ---------------------------------------------------------------- execution

    def execute(self, code):
        """Run one cell. Returns stdout, stderr, variable names, timing and the final answer."""
        try:
            return self._execute(code)
        except KeyboardInterrupt:
            # The interrupt landed outside the user's code (before it started, or while the
            # answer was collected): still a clean, interrupted cell, never an exception.
            self._leave_cell()
            self._collect_answer()
            names = self._user_names()
            return {
                "stdout": "",
                "stderr": "",
                "locals": names,
                "previews": self._previews(names),
                "execution_time": 0.0,
                "final_answer": None,
                "error_type": "KeyboardInterrupt",
                "interrupted": True,
            }

    def _execute(self, code):
        self._cell_count += 1
        filename = "<cell-%d>" % self._cell_count
        self._sources[filename] = linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        live = self._live = _LiveForward(self._output) if self._output is not None else None
        out = _CappedOutput(self._max_output_chars, live, "stdout")
        err = _CappedOutput(self._max_output_chars, live, "stderr")
        failure = ""
        self._streams = (out, err)
        self._take_interpreter(True)
        self._final = _UNSET
        error_type = None
        interrupted = False
        started = time.perf_counter()
        try:
            self._run(code, filename)
        except KeyboardInterrupt:
            interrupted = True
            error_type = "KeyboardInterrupt"
        except BaseException as exc:  # the cell's error is the model's to see, never ours
            error_type = type(exc).__name__
            # Outside the cap: the model must see why its cell failed, however much it printed.
            failure = self._format_exception(exc, filename)
        finally:
            self._leave_cell()
            self._live = None
            if live is not None:
                live.flush()
        elapsed = time.perf_counter() - started
        final = self._collect_answer()
        names = self._user_names()
        return {
            "stdout": out.text(),
            "stderr": err.text() + failure,
            "locals": names,
            "previews": self._previews(names),
            "execution_time": elapsed,
            "final_answer": final,
            "error_type": error_type,
            "interrupted": interrupted,
        }

    def _leave_cell(self):
        if self._streams is not None:
            sys.stdout, sys.stderr = self._base_streams
            self._streams = None

    def _run(self, code, filename):
        tree = ast.parse(code, filename, "exec")
        tail = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            tail = ast.Expression(tree.body.pop().value)
        exec(compile(tree, filename, "exec"), self.ns)
        if tail is not None:
            value = eval(compile(tail, filename, "eval"), self.ns)
            if value is not None:
                print(repr(value))

    def _format_exception(self, exc, filename):
        # Another namespace in this interpreter may have reused a cell's name: put ours back.
        linecache.cache.update(self._sources)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
        lines = []
        if frames:
            lines.append("Traceback (most recent call last):\n")
            lines.extend(traceback.format_list(frames[-_TRACEBACK_FRAMES:]))
        lines.extend(traceback.format_exception_only(type(exc), exc))
        return "".join(lines)

    def _collect_answer(self):
        """Read the answer, then put every reserved name back as it was."""
        final = self._final
        current = self.ns.get("answer")
        if final is _UNSET and isinstance(current, dict) and current.get("ready"):
            final = current.get("content", "")
        for name, value in self._scaffold.items():
            if name == "answer":
                if not isinstance(current, AnswerDict):
                    fresh = AnswerDict()
                    if isinstance(current, dict):
                        fresh.update(current)
                    self.ns["answer"] = fresh
                    self._scaffold["answer"] = fresh
                continue
            if self.ns.get(name, _UNSET) is not value:
                self.ns[name] = value
        self._final = _UNSET
        if final is _UNSET:
            return None
        self.ns["answer"]["ready"] = False
        return self._answer_text(final)


def make_stdio_transport(stdin, stdout):
    """Transport for remote sandboxes: one JSON line out, one JSON line back."""

    def transport(request):
        stdout.write(json.dumps({"type": "request", "request": request}) + "\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            raise RuntimeError("the sub-call channel closed")
        return json.loads(line)

    return transport
