"""Paddle's ProgramDesc protobuf messages (generated: do not edit).

Generated from ``framework.proto`` beside this file by ``resources/paddle/gen_framework_pb2.py``
(``protoc --descriptor_set_out``). The classes live in a private descriptor pool, so this module
works with any protobuf runtime and does not clash with Paddle's own ``framework_pb2``.
"""

from __future__ import annotations

import base64

from google.protobuf import descriptor_pool, message_factory

# The compiled FileDescriptorProto of framework.proto, base64-encoded.
_SERIALIZED = base64.b64decode(
    "Cg9mcmFtZXdvcmsucHJvdG8SFnBhZGRsZS5mcmFtZXdvcmsucHJvdG8iJgoHVmVyc2lvbhIbCgd2ZXJzaW9uGAEg"
    "ASgDOgEwUgd2ZXJzaW9uIiUKB0NvbXBsZXgSDAoBchgBIAIoAVIBchIMCgFpGAIgAigBUgFpItYBCgZTY2FsYXIS"
    "NwoEdHlwZRgBIAIoDjIjLnBhZGRsZS5mcmFtZXdvcmsucHJvdG8uU2NhbGFyLlR5cGVSBHR5cGUSDAoBYhgCIAEo"
    "CFIBYhIMCgFpGAMgASgDUgFpEgwKAXIYBCABKAFSAXISLQoBYxgFIAEoCzIfLnBhZGRsZS5mcmFtZXdvcmsucHJv"
    "dG8uQ29tcGxleFIBYyI6CgRUeXBlEgsKB0JPT0xFQU4QARIICgRMT05HEAISCwoHRkxPQVQ2NBADEg4KCkNPTVBM"
    "RVgxMjgQBCLfBgoGT3BEZXNjEhIKBHR5cGUYAyACKAlSBHR5cGUSOgoGaW5wdXRzGAEgAygLMiIucGFkZGxlLmZy"
    "YW1ld29yay5wcm90by5PcERlc2MuVmFyUgZpbnB1dHMSPAoHb3V0cHV0cxgCIAMoCzIiLnBhZGRsZS5mcmFtZXdv"
    "cmsucHJvdG8uT3BEZXNjLlZhclIHb3V0cHV0cxI5CgVhdHRycxgEIAMoCzIjLnBhZGRsZS5mcmFtZXdvcmsucHJv"
    "dG8uT3BEZXNjLkF0dHJSBWF0dHJzEiIKCWlzX3RhcmdldBgFIAEoCDoFZmFsc2VSCGlzVGFyZ2V0GqQECgRBdHRy"
    "EhIKBG5hbWUYASACKAlSBG5hbWUSNAoEdHlwZRgCIAIoDjIgLnBhZGRsZS5mcmFtZXdvcmsucHJvdG8uQXR0clR5"
    "cGVSBHR5cGUSDAoBaRgDIAEoBVIBaRIMCgFmGAQgASgCUgFmEgwKAXMYBSABKAlSAXMSEgoEaW50cxgGIAMoBVIE"
    "aW50cxIWCgZmbG9hdHMYByADKAJSBmZsb2F0cxIYCgdzdHJpbmdzGAggAygJUgdzdHJpbmdzEgwKAWIYCiABKAhS"
    "AWISFAoFYm9vbHMYCyADKAhSBWJvb2xzEhsKCWJsb2NrX2lkeBgMIAEoBVIIYmxvY2tJZHgSDAoBbBgNIAEoA1IB"
    "bBIdCgpibG9ja3NfaWR4GA4gAygFUglibG9ja3NJZHgSFAoFbG9uZ3MYDyADKANSBWxvbmdzEhoKCGZsb2F0NjRz"
    "GBAgAygBUghmbG9hdDY0cxIZCgh2YXJfbmFtZRgRIAEoCVIHdmFyTmFtZRIbCgl2YXJzX25hbWUYEiADKAlSCHZh"
    "cnNOYW1lEhgKB2Zsb2F0NjQYEyABKAFSB2Zsb2F0NjQSNgoGc2NhbGFyGBQgASgLMh4ucGFkZGxlLmZyYW1ld29y"
    "ay5wcm90by5TY2FsYXJSBnNjYWxhchI4CgdzY2FsYXJzGBUgAygLMh4ucGFkZGxlLmZyYW1ld29yay5wcm90by5T"
    "Y2FsYXJSB3NjYWxhcnMaQQoDVmFyEhwKCXBhcmFtZXRlchgBIAIoCVIJcGFyYW1ldGVyEhwKCWFyZ3VtZW50cxgC"
    "IAMoCVIJYXJndW1lbnRzIswNCgdWYXJUeXBlEjgKBHR5cGUYASACKA4yJC5wYWRkbGUuZnJhbWV3b3JrLnByb3Rv"
    "LlZhclR5cGUuVHlwZVIEdHlwZRJPCg1zZWxlY3RlZF9yb3dzGAIgASgLMioucGFkZGxlLmZyYW1ld29yay5wcm90"
    "by5WYXJUeXBlLlRlbnNvckRlc2NSDHNlbGVjdGVkUm93cxJMCgpsb2RfdGVuc29yGAMgASgLMi0ucGFkZGxlLmZy"
    "YW1ld29yay5wcm90by5WYXJUeXBlLkxvRFRlbnNvckRlc2NSCWxvZFRlbnNvchJVCgx0ZW5zb3JfYXJyYXkYBCAB"
    "KAsyMi5wYWRkbGUuZnJhbWV3b3JrLnByb3RvLlZhclR5cGUuTG9EVGVuc29yQXJyYXlEZXNjUgt0ZW5zb3JBcnJh"
    "eRJCCgZyZWFkZXIYBSABKAsyKi5wYWRkbGUuZnJhbWV3b3JrLnByb3RvLlZhclR5cGUuUmVhZGVyRGVzY1IGcmVh"
    "ZGVyEjsKBXR1cGxlGAcgASgLMiUucGFkZGxlLmZyYW1ld29yay5wcm90by5WYXJUeXBlLlR1cGxlUgV0dXBsZRJC"
    "CgZzdHJpbmcYCCABKAsyKi5wYWRkbGUuZnJhbWV3b3JrLnByb3RvLlZhclR5cGUuVGVuc29yRGVzY1IGc3RyaW5n"
    "EkQKB3N0cmluZ3MYCSABKAsyKi5wYWRkbGUuZnJhbWV3b3JrLnByb3RvLlZhclR5cGUuVGVuc29yRGVzY1IHc3Ry"
    "aW5ncxJACgV2b2NhYhgKIAEoCzIqLnBhZGRsZS5mcmFtZXdvcmsucHJvdG8uVmFyVHlwZS5UZW5zb3JEZXNjUgV2"
    "b2NhYhJJCgpzcGFyc2VfY29vGAsgASgLMioucGFkZGxlLmZyYW1ld29yay5wcm90by5WYXJUeXBlLlRlbnNvckRl"
    "c2NSCXNwYXJzZUNvbxJJCgpzcGFyc2VfY3NyGAwgASgLMioucGFkZGxlLmZyYW1ld29yay5wcm90by5WYXJUeXBl"
    "LlRlbnNvckRlc2NSCXNwYXJzZUNzchpjCgpUZW5zb3JEZXNjEkEKCWRhdGFfdHlwZRgBIAIoDjIkLnBhZGRsZS5m"
    "cmFtZXdvcmsucHJvdG8uVmFyVHlwZS5UeXBlUghkYXRhVHlwZRISCgRkaW1zGAIgAygDUgRkaW1zGnMKDUxvRFRl"
    "bnNvckRlc2MSQgoGdGVuc29yGAEgAigLMioucGFkZGxlLmZyYW1ld29yay5wcm90by5WYXJUeXBlLlRlbnNvckRl"
    "c2NSBnRlbnNvchIeCglsb2RfbGV2ZWwYAiABKAU6ATBSCGxvZExldmVsGngKEkxvRFRlbnNvckFycmF5RGVzYxJC"
    "CgZ0ZW5zb3IYASACKAsyKi5wYWRkbGUuZnJhbWV3b3JrLnByb3RvLlZhclR5cGUuVGVuc29yRGVzY1IGdGVuc29y"
    "Eh4KCWxvZF9sZXZlbBgCIAEoBToBMFIIbG9kTGV2ZWwaWgoKUmVhZGVyRGVzYxJMCgpsb2RfdGVuc29yGAEgAygL"
    "Mi0ucGFkZGxlLmZyYW1ld29yay5wcm90by5WYXJUeXBlLkxvRFRlbnNvckRlc2NSCWxvZFRlbnNvchpQCgVUdXBs"
    "ZRJHCgxlbGVtZW50X3R5cGUYASADKA4yJC5wYWRkbGUuZnJhbWV3b3JrLnByb3RvLlZhclR5cGUuVHlwZVILZWxl"
    "bWVudFR5cGUiqwMKBFR5cGUSCAoEQk9PTBAAEgkKBUlOVDE2EAESCQoFSU5UMzIQAhIJCgVJTlQ2NBADEggKBEZQ"
    "MTYQBBIICgRGUDMyEAUSCAoERlA2NBAGEgoKBlNJWkVfVBATEgkKBVVJTlQ4EBQSCAoESU5UOBAVEggKBEJGMTYQ"
    "FhINCglDT01QTEVYNjQQFxIOCgpDT01QTEVYMTI4EBgSDgoKTE9EX1RFTlNPUhAHEhEKDVNFTEVDVEVEX1JPV1MQ"
    "CBISCg5GRUVEX01JTklCQVRDSBAJEg4KCkZFVENIX0xJU1QQChIPCgtTVEVQX1NDT1BFUxALEhIKDkxPRF9SQU5L"
    "X1RBQkxFEAwSFAoQTE9EX1RFTlNPUl9BUlJBWRANEg4KClBMQUNFX0xJU1QQDhIKCgZSRUFERVIQDxIHCgNSQVcQ"
    "ERIJCgVUVVBMRRASEgoKBlNUUklORxAZEgsKB1NUUklOR1MQGhIJCgVWT0NBQhAbEg0KCUZFRURfTElTVBAcEgsK"
    "B1BTVFJJTkcQHRIOCgpTUEFSU0VfQ09PEB4SDgoKU1BBUlNFX0NTUhAfIr8DCgdWYXJEZXNjEhIKBG5hbWUYASAC"
    "KAlSBG5hbWUSMwoEdHlwZRgCIAIoCzIfLnBhZGRsZS5mcmFtZXdvcmsucHJvdG8uVmFyVHlwZVIEdHlwZRInCgtw"
    "ZXJzaXN0YWJsZRgDIAEoCDoFZmFsc2VSC3BlcnNpc3RhYmxlEi0KD25lZWRfY2hlY2tfZmVlZBgEIAEoCDoFZmFs"
    "c2VSDW5lZWRDaGVja0ZlZWQSKAoMaXNfcGFyYW1ldGVyGAUgASgIOgVmYWxzZVILaXNQYXJhbWV0ZXISKgoNc3Rv"
    "cF9ncmFkaWVudBgGIAEoCDoFZmFsc2VSDHN0b3BHcmFkaWVudBI6CgVhdHRycxgHIAMoCzIkLnBhZGRsZS5mcmFt"
    "ZXdvcmsucHJvdG8uVmFyRGVzYy5BdHRyUgVhdHRycxqAAQoEQXR0chISCgRuYW1lGAEgAigJUgRuYW1lEjQKBHR5"
    "cGUYAiACKA4yIC5wYWRkbGUuZnJhbWV3b3JrLnByb3RvLkF0dHJUeXBlUgR0eXBlEgwKAWkYAyABKAVSAWkSDAoB"
    "cxgEIAEoCVIBcxISCgRpbnRzGAUgAygFUgRpbnRzItMBCglCbG9ja0Rlc2MSEAoDaWR4GAEgAigFUgNpZHgSHQoK"
    "cGFyZW50X2lkeBgCIAIoBVIJcGFyZW50SWR4EjMKBHZhcnMYAyADKAsyHy5wYWRkbGUuZnJhbWV3b3JrLnByb3Rv"
    "LlZhckRlc2NSBHZhcnMSMAoDb3BzGAQgAygLMh4ucGFkZGxlLmZyYW1ld29yay5wcm90by5PcERlc2NSA29wcxIu"
    "ChFmb3J3YXJkX2Jsb2NrX2lkeBgFIAEoBToCLTFSD2ZvcndhcmRCbG9ja0lkeCIlCglPcFZlcnNpb24SGAoHdmVy"
    "c2lvbhgBIAIoBVIHdmVyc2lvbiLCAQoMT3BWZXJzaW9uTWFwEkYKBHBhaXIYASADKAsyMi5wYWRkbGUuZnJhbWV3"
    "b3JrLnByb3RvLk9wVmVyc2lvbk1hcC5PcFZlcnNpb25QYWlyUgRwYWlyGmoKDU9wVmVyc2lvblBhaXISFwoHb3Bf"
    "bmFtZRgBIAIoCVIGb3BOYW1lEkAKCm9wX3ZlcnNpb24YAiACKAsyIS5wYWRkbGUuZnJhbWV3b3JrLnByb3RvLk9w"
    "VmVyc2lvblIJb3BWZXJzaW9uItsBCgtQcm9ncmFtRGVzYxI5CgZibG9ja3MYASADKAsyIS5wYWRkbGUuZnJhbWV3"
    "b3JrLnByb3RvLkJsb2NrRGVzY1IGYmxvY2tzEjkKB3ZlcnNpb24YBCABKAsyHy5wYWRkbGUuZnJhbWV3b3JrLnBy"
    "b3RvLlZlcnNpb25SB3ZlcnNpb24SSgoOb3BfdmVyc2lvbl9tYXAYBSABKAsyJC5wYWRkbGUuZnJhbWV3b3JrLnBy"
    "b3RvLk9wVmVyc2lvbk1hcFIMb3BWZXJzaW9uTWFwSgQIAhADSgQIAxAEKtsBCghBdHRyVHlwZRIHCgNJTlQQABIJ"
    "CgVGTE9BVBABEgoKBlNUUklORxACEggKBElOVFMQAxIKCgZGTE9BVFMQBBILCgdTVFJJTkdTEAUSCwoHQk9PTEVB"
    "ThAGEgwKCEJPT0xFQU5TEAcSCQoFQkxPQ0sQCBIICgRMT05HEAkSCgoGQkxPQ0tTEAoSCQoFTE9OR1MQCxIMCghG"
    "TE9BVDY0UxAMEgcKA1ZBUhANEggKBFZBUlMQDhILCgdGTE9BVDY0EA8SCgoGU0NBTEFSEBASCwoHU0NBTEFSUxAR"
)

POOL = descriptor_pool.DescriptorPool()
POOL.AddSerializedFile(_SERIALIZED)


PACKAGE = "paddle.framework.proto"


def _message(name: str) -> type:
    descriptor = POOL.FindMessageTypeByName(f"{PACKAGE}.{name}")
    cls: type
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
        cls = message_factory.GetMessageClass(descriptor)
    else:  # protobuf < 4.21 (the stubs describe the newer API only)
        factory = message_factory.MessageFactory(POOL)
        cls = factory.GetPrototype(descriptor)  # type: ignore[attr-defined]
    return cls


def _enum(name: str) -> dict[int, str]:
    return {v.number: v.name for v in POOL.FindEnumTypeByName(f"{PACKAGE}.{name}").values}


ProgramDesc = _message("ProgramDesc")
BlockDesc = _message("BlockDesc")
OpDesc = _message("OpDesc")
VarDesc = _message("VarDesc")
VarType = _message("VarType")
TensorDesc = _message("VarType.TensorDesc")

ATTR_TYPE = _enum("AttrType")
VAR_TYPE = _enum("VarType.Type")
