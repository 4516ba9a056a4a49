using System;
using System.Collections.Generic;
using NUnit.Framework;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class MsgPackTests
    {
        [Test]
        public void GoldenVectorsDecodeToTheirValueAndReencodeByteExact()
        {
            var vectors = GoldenVectors.Load("msgpack.json");
            Assert.Greater(vectors.Count, 50, "msgpack.json holds too few vectors");
            var failures = new List<string>();
            int decodeOnly = 0;
            foreach (var v in vectors)
            {
                var name = (string)v["name"];
                var hex = (string)v["hex"];
                var expected = GoldenVectors.Untag(v["value"]);
                try
                {
                    var decoded = MsgPack.Decode(GoldenVectors.Hex(hex));
                    var diff = GoldenVectors.Difference(expected, decoded);
                    if (diff != null) failures.Add($"{name}: decode: {diff}");
                    // decode_only: a form other encoders may write (float32, array32, map32) that ours never do
                    if (v.TryGetValue("decode_only", out var flag) && (bool)flag)
                    {
                        decodeOnly++;
                        if (GoldenVectors.ToHex(MsgPack.Encode(decoded)) == hex) failures.Add($"{name}: decode_only, but we encode it so");
                        continue;
                    }
                    var reencoded = GoldenVectors.ToHex(MsgPack.Encode(decoded));
                    if (reencoded != hex) failures.Add($"{name}: decode→encode gave {Clip(reencoded)}, expected {Clip(hex)}");
                    var encoded = GoldenVectors.ToHex(MsgPack.Encode(expected));
                    if (encoded != hex) failures.Add($"{name}: encode(value) gave {Clip(encoded)}, expected {Clip(hex)}");
                }
                catch (Exception e) { failures.Add($"{name}: {e.GetType().Name}: {e.Message}"); }
            }
            Assert.IsEmpty(failures, string.Join("\n", failures));
            Assert.GreaterOrEqual(decodeOnly, 3, "msgpack.json holds no decode_only vectors (float32, array32, map32)");
        }

        [Test]
        public void EveryIntegerFormTheHostMaySendDecodesToALongThatGetLongReads()
        {   // SessionInfo.From and every other parser read integers with GetLong: the decoder never yields int or byte
            var forms = new Dictionary<string, long>
            {
                { "08", 8 }, { "ccc8", 200 }, { "cd0100", 256 }, { "ce00010000", 65536 }, { "cf0000000100000000", 1L << 32 },
                { "e0", -32 }, { "d0df", -33 }, { "d1ff00", -256 }, { "d2ffff0000", -65536 }, { "d3ffffffff00000000", -(1L << 32) },
            };
            foreach (var form in forms)
            {
                var map = (MsgMap)MsgPack.Decode(GoldenVectors.Hex("81a17a" + form.Key)); // {"z": <form>}
                Assert.IsInstanceOf<long>(map["z"], form.Key);
                Assert.AreEqual(form.Value, map.GetLong("z"), form.Key);
            }
        }

        static string Clip(string hex) => hex.Length > 48 ? hex.Substring(0, 48) + "…" : hex;

        [Test]
        public void IntegersUseTheSmallestFormOfTheirSign()
        {
            Assert.AreEqual("ccc8", GoldenVectors.ToHex(MsgPack.Encode(200)));
            Assert.AreEqual("ccc8", GoldenVectors.ToHex(MsgPack.Encode((short)200)));
            Assert.AreEqual("d0df", GoldenVectors.ToHex(MsgPack.Encode(-33)));
            Assert.AreEqual("e0", GoldenVectors.ToHex(MsgPack.Encode((sbyte)-32)));
            Assert.AreEqual("cd0100", GoldenVectors.ToHex(MsgPack.Encode(256L)));
            Assert.AreEqual("cfffffffffffffffff", GoldenVectors.ToHex(MsgPack.Encode(ulong.MaxValue)));
            Assert.AreEqual(ulong.MaxValue, MsgPack.Decode(GoldenVectors.Hex("cfffffffffffffffff")));
        }

        [Test]
        public void FloatsAreAlwaysFloat64AndFloat32IsStillDecoded()
        {
            Assert.AreEqual("cb3ff8000000000000", GoldenVectors.ToHex(MsgPack.Encode(1.5f)));
            Assert.AreEqual(1.5, MsgPack.Decode(GoldenVectors.Hex("ca3fc00000")));
        }

        [Test]
        public void MapsKeepInsertionOrderAndReadLenientNumbers()
        {
            var m = new MsgMap { { "b", 1 }, { "a", 2.5 } };
            var back = (MsgMap)MsgPack.Decode(MsgPack.Encode(m));
            CollectionAssert.AreEqual(new[] { "b", "a" }, back.Keys);
            Assert.AreEqual(1.0, back.GetDouble("b"), "an integer where a float is documented must be accepted");
            Assert.AreEqual(2L, back.GetLong("a"));
            Assert.IsNull(back["missing"]);
            Assert.Throws<ArgumentException>(() => m.Add("a", 3));
        }

        [Test]
        public void DecodeErrorsWriteACountOfOneAsAPersonWould()
        {
            // they said "1 trailing bytes" and "need 1 bytes", as the Godot decoder did
            var cases = new Dictionary<string, string>
            {
                { "c0c0", "msgpack: 1 trailing byte after" }, { "c0c0c0", "msgpack: 2 trailing bytes after" },
                { "c401", "need 1 byte at offset 2 but only 0 remain" }, { "c40300", "need 3 bytes at offset 2" },
            };
            foreach (var c in cases)
                StringAssert.Contains(c.Value, Assert.Throws<FormatException>(() => MsgPack.Decode(GoldenVectors.Hex(c.Key))).Message, c.Key);
        }

        [Test]
        public void BadInputGivesClearErrors()
        {
            var truncated = Assert.Throws<FormatException>(() => MsgPack.Decode(GoldenVectors.Hex("cd01")));
            StringAssert.Contains("truncated", truncated.Message);
            var ext = Assert.Throws<FormatException>(() => MsgPack.Decode(GoldenVectors.Hex("d40100")));
            StringAssert.Contains("ext", ext.Message);
            var key = Assert.Throws<FormatException>(() => MsgPack.Decode(GoldenVectors.Hex("810102")));
            StringAssert.Contains("not a string", key.Message);
            var trailing = Assert.Throws<FormatException>(() => MsgPack.Decode(GoldenVectors.Hex("c0c0")));
            StringAssert.Contains("trailing", trailing.Message);
            var utf8 = Assert.Throws<FormatException>(() => MsgPack.Decode(GoldenVectors.Hex("a1ff")));
            StringAssert.Contains("UTF-8", utf8.Message);
            var huge = Assert.Throws<FormatException>(() => MsgPack.Decode(GoldenVectors.Hex("dd7fffffff")));
            StringAssert.Contains("truncated", huge.Message);
            var notHeader = Assert.Throws<FormatException>(() => MsgPack.DecodeHeader(GoldenVectors.Hex("81a17801")));
            StringAssert.Contains("type", notHeader.Message);
            var type = Assert.Throws<ArgumentException>(() => MsgPack.Encode(new object()));
            StringAssert.Contains("cannot encode", type.Message);
        }

        [Test]
        public void DeepNestingIsRefusedInsteadOfOverflowingTheStack()
        {
            var bytes = new byte[100];
            for (int i = 0; i < bytes.Length; i++) bytes[i] = 0x91; // [[[[...
            Assert.Throws<FormatException>(() => MsgPack.Decode(bytes));
        }
    }
}
