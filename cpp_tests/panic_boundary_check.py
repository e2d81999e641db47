#!/usr/bin/env python3
"""Every function the header declares is defined in src/ as `extern "C"` and runs its body inside
the panic boundary, `boundary("<its own name>", ...)` (src/ffi/mod.rs), so no panic unwinds into
C. The exceptions are listed below, each with why it cannot panic; a new export that is neither
fails here, and so does a listed exception that no longer exists or now uses the boundary.

    panic_boundary_check.py <source dir>
"""
import re
import sys
from pathlib import Path

# Exported functions that do not go through `boundary`, and why none of them can panic.
NO_BOUNDARY = {
    "tb_version": "integer arithmetic on constants",
    "tb_version_string": "returns a pointer to a static string",
    "tb_status_name": "table lookup with a fallback for unknown codes",
    "tb_device_type_name": "table lookup with a fallback for unknown codes",
    "tb_last_error_message": "returns the thread-local buffer's pointer",
    "tb_dtype_count": "counts a static table",
    "tb_dlpack_exchange_api": "returns the address of a static table",
}
# Callbacks handed to C (not declared in the header) and what catches their panics.
CALLBACKS = {
    "delete_export": "delete_once(...) runs the body under catch_unwind",
    "collect_error": "runs the body under catch_unwind",
    "offer_managed_from_py": "offered(...) runs the body through boundary",
    "offer_dltensor_from_py": "offered(...) runs the body through boundary",
    "offer_managed_to_py": "offered(...) runs the body through boundary",
    "offer_allocator": "runs the body through boundary",
    "offer_current_stream": "a NULL check and one write",
}

DEFINITION = re.compile(r'extern\s+"C"\s+fn\s+(\w+)\s*(?:<[^>]*>)?\s*\(')


def body_after(text, start):
    """The text of the function body that starts at the first '{' after `start`."""
    open_at = text.index("{", start)
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at + 1:i]
    raise ValueError("unbalanced braces")


def main(root):
    root = Path(root)
    header = (root / "include" / "tensorbridge.h").read_text()
    declared = set(re.findall(r"\b(tb_\w+)\s*\(", header))
    defined = {}
    for path in sorted((root / "src").rglob("*.rs")):
        text = path.read_text()
        for match in DEFINITION.finditer(text):
            defined[match.group(1)] = (path.relative_to(root), body_after(text, match.end()))
    problems = []
    for name in sorted(declared - set(defined)):
        problems.append(f"{name}: declared in the header but no extern \"C\" definition found")
    rows = []
    for name, (path, body) in sorted(defined.items()):
        if name in CALLBACKS:
            ok = "catch_unwind" in body or "delete_once" in body
            rows.append((name, path, "callback: " + CALLBACKS[name], ok))
            continue
        if name not in declared:
            continue
        uses = re.match(r'\s*boundary\(\s*"(\w+)"', body)
        if name in NO_BOUNDARY:
            rows.append((name, path, "no boundary: " + NO_BOUNDARY[name], uses is None and "panic" not in body))
            if uses is not None:
                problems.append(f"{name} ({path}) now uses the boundary: remove it from NO_BOUNDARY")
        elif uses is None:
            rows.append((name, path, "MISSING boundary", False))
            problems.append(f"{name} ({path}): body does not start with boundary(\"{name}\", ...)")
        elif uses.group(1) != name:
            rows.append((name, path, f"boundary names {uses.group(1)}", False))
            problems.append(f"{name} ({path}): boundary is named \"{uses.group(1)}\"; messages would "
                            "name the wrong function")
        else:
            rows.append((name, path, "boundary", True))
    for name in sorted(set(NO_BOUNDARY) - set(defined)):
        problems.append(f"{name}: listed in NO_BOUNDARY but no longer defined")
    for name, path, how, ok in rows:
        print(f"{'ok ' if ok else 'BAD'} {name:45} {how} ({path})")
    if len([r for r in rows if r[2] == "boundary"]) < 40:
        problems.append("fewer than 40 exports found using the boundary: is the parser still right?")
    for problem in problems:
        print("FAIL:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
