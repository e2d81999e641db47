#!/usr/bin/env python3
"""Reduces an `abidw` dump of libtensorbridge.so to the public C ABI (used by scripts/abi-check.sh).

The library is Rust: its DWARF names no C header, so abidw's --headers-dir cannot tell public types
from private ones, and abidw also emits the types of internal (non-exported) functions it read on
the way. This keeps what a C caller can reach and nothing else:

  * the exported ELF symbols (all `tb_*`: tensorbridge.map exports nothing else);
  * the declarations of exported functions and variables (those with an `elf-symbol-id`);
  * every type reachable from them, transitively (struct fields, pointees, callback signatures);

it drops the build machine's paths from the translation units' names, and it flattens Rust's
module namespaces (`tensorbridge::ffi::cai::TbArrayInterface` becomes `TbArrayInterface`),
because the C ABI has no namespaces: moving a struct to another Rust module is not an ABI change. abidiff only compares types reachable from exported declarations, so the
filter changes the file's size, not the verdict. Both the committed baseline and every fresh dump
go through this same filter.

Usage: abi-filter.py IN.abi OUT.abi
"""

import re
import sys
import xml.etree.ElementTree as ET


def flatten_namespaces(parent):
    """Replaces every namespace-decl under `parent` by its children, in place, keeping order."""
    out = []
    for child in list(parent):
        if child.tag == "namespace-decl":
            flatten_namespaces(child)
            out.extend(list(child))
        else:
            out.append(child)
    for child in list(parent):
        parent.remove(child)
    parent.extend(out)


def type_refs(elem):
    for node in elem.iter():
        ref = node.get("type-id")
        if ref is not None:
            yield ref


def main(src, dst):
    tree = ET.parse(src)
    corpus = tree.getroot()
    instrs = [e for e in corpus if e.tag == "abi-instr"]
    for instr in instrs:
        flatten_namespaces(instr)
        # Translation units are Rust codegen units: name them without the machine's paths and the
        # crate hash ("/root/.cargo/.../@/cudarc.a06f…-cgu.04" -> "cudarc-cgu.04"), so the file
        # does not depend on where it was built. abidiff does not compare them.
        path = instr.get("path", "")
        instr.set("path", re.sub(r"^.*/@/([A-Za-z0-9_]+)\.[0-9a-f]+(-cgu\.\d+)$", r"\1\2", path))
        instr.attrib.pop("comp-dir-path", None)

    # id -> the top-level element (a child of an abi-instr) that defines it.
    owner = {}
    for instr in instrs:
        for top in instr:
            for node in top.iter():
                ident = node.get("id")
                if ident is not None:
                    owner.setdefault(ident, []).append(top)

    keep = set()
    work = []
    for instr in instrs:
        for top in instr:
            if top.tag in ("function-decl", "var-decl") and top.get("elf-symbol-id"):
                keep.add(id(top))
                work.append(top)
    while work:
        top = work.pop()
        for ref in type_refs(top):
            for defining in owner.get(ref, ()):
                if id(defining) not in keep:
                    keep.add(id(defining))
                    work.append(defining)

    for instr in instrs:
        for top in list(instr):
            if id(top) not in keep:
                instr.remove(top)
        if len(instr) == 0:
            corpus.remove(instr)

    ET.indent(tree, space="  ")
    tree.write(dst, encoding="unicode")
    with open(dst, "a") as f:
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
