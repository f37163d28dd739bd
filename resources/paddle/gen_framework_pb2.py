"""Regenerate ``qcore/paddle/framework_pb2.py`` from ``qcore/paddle/framework.proto``.

A dev-only tool; it needs ``protoc`` (``apt-get install -y protobuf-compiler``)::

    .venv/bin/python resources/paddle/gen_framework_pb2.py

The module it writes holds the compiled ``FileDescriptorProto`` and builds the message
classes in a private descriptor pool at import time, so it works with any protobuf runtime
(no generated-code version check) and never clashes with Paddle's own ``framework_pb2`` if
both are imported in one process.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "qcore" / "paddle" / "framework.proto"
TARGET = ROOT / "qcore" / "paddle" / "framework_pb2.py"

TEMPLATE = '''"""Paddle's ProgramDesc protobuf messages (generated: do not edit).

Generated from ``framework.proto`` beside this file by ``resources/paddle/gen_framework_pb2.py``
(``protoc --descriptor_set_out``). The classes live in a private descriptor pool, so this module
works with any protobuf runtime and does not clash with Paddle's own ``framework_pb2``.
"""

from __future__ import annotations

import base64

from google.protobuf import descriptor_pool, message_factory

# The compiled FileDescriptorProto of framework.proto, base64-encoded.
_SERIALIZED = base64.b64decode(
{chunks}
)

POOL = descriptor_pool.DescriptorPool()
POOL.AddSerializedFile(_SERIALIZED)


PACKAGE = "paddle.framework.proto"


def _message(name: str) -> type:
    descriptor = POOL.FindMessageTypeByName(f"{{PACKAGE}}.{{name}}")
    cls: type
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
        cls = message_factory.GetMessageClass(descriptor)
    else:  # protobuf < 4.21 (the stubs describe the newer API only)
        factory = message_factory.MessageFactory(POOL)
        cls = factory.GetPrototype(descriptor)  # type: ignore[attr-defined]
    return cls


def _enum(name: str) -> dict[int, str]:
    return {{v.number: v.name for v in POOL.FindEnumTypeByName(f"{{PACKAGE}}.{{name}}").values}}


ProgramDesc = _message("ProgramDesc")
BlockDesc = _message("BlockDesc")
OpDesc = _message("OpDesc")
VarDesc = _message("VarDesc")
VarType = _message("VarType")
TensorDesc = _message("VarType.TensorDesc")

ATTR_TYPE = _enum("AttrType")
VAR_TYPE = _enum("VarType.Type")
'''


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "framework.desc"
        subprocess.run(["protoc", f"--proto_path={PROTO.parent}", f"--descriptor_set_out={out}",
                        PROTO.name], check=True)
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    data = files.file[0].SerializeToString()
    text = base64.b64encode(data).decode()
    chunks = "\n".join(f'    "{text[i:i + 88]}"' for i in range(0, len(text), 88))
    TARGET.write_text(TEMPLATE.format(chunks=chunks))
    print(f"wrote {TARGET} ({len(data)} descriptor bytes)")


if __name__ == "__main__":
    main()
