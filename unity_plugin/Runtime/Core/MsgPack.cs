// msgpack codec following docs/protocol.md §2, so every client produces the same bytes for the same value.
// Decoded values: null, bool, long (ulong above long.MaxValue), double, string, byte[], List<object>, MsgMap.
using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace WorldBridge.Core
{
    /// <summary>A msgpack map with string keys that remembers insertion order (the protocol pins key order).</summary>
    public sealed class MsgMap : IEnumerable<KeyValuePair<string, object>>
    {
        readonly List<string> keys = new List<string>();
        readonly Dictionary<string, object> values = new Dictionary<string, object>();

        public int Count => keys.Count;
        public IReadOnlyList<string> Keys => keys;

        public object this[string key]
        {
            get => values.TryGetValue(key, out var v) ? v : null;
            set { if (!values.ContainsKey(key)) keys.Add(key); values[key] = value; }
        }

        /// <summary>Collection-initializer support: new MsgMap { { "type", "hello" } }.</summary>
        public void Add(string key, object value)
        {
            if (values.ContainsKey(key)) throw new ArgumentException($"duplicate map key '{key}'");
            this[key] = value;
        }

        public bool Has(string key) => values.ContainsKey(key) && values[key] != null;

        /// <summary>Whether `key` was sent at all, nil included (Has is false for a nil value).</summary>
        public bool ContainsKey(string key) => values.ContainsKey(key);

        public string GetString(string key, string fallback = null) => this[key] as string ?? fallback;

        public long GetLong(string key, long fallback = 0)
        {
            var v = this[key];
            if (v is long l) return l;
            if (v is ulong u) return unchecked((long)u);
            if (v is double d) return (long)d;
            return fallback;
        }

        /// <summary>Fields documented as float may arrive as integers from lenient encoders (§2).</summary>
        public double GetDouble(string key, double fallback = 0)
        {
            var v = this[key];
            if (v is double d) return d;
            if (v is long l) return l;
            if (v is ulong u) return u;
            return fallback;
        }

        public bool GetBool(string key, bool fallback = false) => this[key] is bool b ? b : fallback;
        public byte[] GetBytes(string key) => this[key] as byte[];
        public MsgMap GetMap(string key) => this[key] as MsgMap;

        public string[] GetStrings(string key)
        {
            if (!(this[key] is List<object> list)) return new string[0];
            var result = new string[list.Count];
            for (int i = 0; i < list.Count; i++) result[i] = list[i] as string ?? Convert.ToString(list[i]);
            return result;
        }

        public IEnumerator<KeyValuePair<string, object>> GetEnumerator()
        {
            foreach (var k in keys) yield return new KeyValuePair<string, object>(k, values[k]);
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    public static class MsgPack
    {
        const int MaxDepth = 64;
        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);

        // --- Encode ---

        public static byte[] Encode(object value)
        {
            var s = new MemoryStream();
            Write(s, value, 0);
            return s.ToArray();
        }

        static void Write(MemoryStream s, object v, int depth)
        {
            if (depth > MaxDepth) throw new ArgumentException("msgpack value nested deeper than 64 levels");
            if (v == null) s.WriteByte(0xc0);
            else if (v is bool b) s.WriteByte(b ? (byte)0xc3 : (byte)0xc2);
            else if (v is string str) WriteStr(s, str);
            else if (v is byte[] bin) WriteBin(s, bin);
            else if (v is double d) WriteFloat(s, d);
            else if (v is float f) WriteFloat(s, f);
            else if (v is ulong ul) WriteUnsigned(s, ul);
            else if (v is uint ui) WriteUnsigned(s, ui);
            else if (v is ushort us) WriteUnsigned(s, us);
            else if (v is byte by) WriteUnsigned(s, by);
            else if (v is long l) WriteInt(s, l);
            else if (v is int i) WriteInt(s, i);
            else if (v is short sh) WriteInt(s, sh);
            else if (v is sbyte sb) WriteInt(s, sb);
            else if (v is MsgMap map)
            {
                WriteHeader(s, map.Count, 0x80, 0xde, 0xdf);
                foreach (var kv in map) { WriteStr(s, kv.Key); Write(s, kv.Value, depth + 1); }
            }
            else if (v is IDictionary dict)
            {
                WriteHeader(s, dict.Count, 0x80, 0xde, 0xdf);
                foreach (DictionaryEntry kv in dict)
                {
                    if (!(kv.Key is string key)) throw new ArgumentException($"msgpack map keys must be strings, got {kv.Key?.GetType().Name}");
                    WriteStr(s, key);
                    Write(s, kv.Value, depth + 1);
                }
            }
            else if (v is IList list)
            {
                WriteHeader(s, list.Count, 0x90, 0xdc, 0xdd);
                foreach (var item in list) Write(s, item, depth + 1);
            }
            else throw new ArgumentException($"msgpack cannot encode a {v.GetType().Name}: use null, bool, an integer, float/double, string, byte[], MsgMap or a list");
        }

        /// <summary>Non-negative → smallest unsigned form, negative → smallest signed form (§2).</summary>
        static void WriteInt(MemoryStream s, long v)
        {
            if (v >= 0) { WriteUnsigned(s, (ulong)v); return; }
            if (v >= -32) s.WriteByte(unchecked((byte)(sbyte)v));
            else if (v >= sbyte.MinValue) { s.WriteByte(0xd0); s.WriteByte(unchecked((byte)(sbyte)v)); }
            else if (v >= short.MinValue) { s.WriteByte(0xd1); WriteBE(s, unchecked((ulong)v), 2); }
            else if (v >= int.MinValue) { s.WriteByte(0xd2); WriteBE(s, unchecked((ulong)v), 4); }
            else { s.WriteByte(0xd3); WriteBE(s, unchecked((ulong)v), 8); }
        }

        static void WriteUnsigned(MemoryStream s, ulong v)
        {
            if (v <= 0x7f) s.WriteByte((byte)v);
            else if (v <= byte.MaxValue) { s.WriteByte(0xcc); s.WriteByte((byte)v); }
            else if (v <= ushort.MaxValue) { s.WriteByte(0xcd); WriteBE(s, v, 2); }
            else if (v <= uint.MaxValue) { s.WriteByte(0xce); WriteBE(s, v, 4); }
            else { s.WriteByte(0xcf); WriteBE(s, v, 8); }
        }

        static void WriteFloat(MemoryStream s, double v)
        {
            s.WriteByte(0xcb);
            WriteBE(s, unchecked((ulong)BitConverter.DoubleToInt64Bits(v)), 8);
        }

        static void WriteStr(MemoryStream s, string v)
        {
            var bytes = Utf8.GetBytes(v);
            int n = bytes.Length;
            if (n < 32) s.WriteByte((byte)(0xa0 | n));
            else if (n <= byte.MaxValue) { s.WriteByte(0xd9); s.WriteByte((byte)n); }
            else if (n <= ushort.MaxValue) { s.WriteByte(0xda); WriteBE(s, (ulong)n, 2); }
            else { s.WriteByte(0xdb); WriteBE(s, (ulong)n, 4); }
            s.Write(bytes, 0, n);
        }

        static void WriteBin(MemoryStream s, byte[] v)
        {
            int n = v.Length;
            if (n <= byte.MaxValue) { s.WriteByte(0xc4); s.WriteByte((byte)n); }
            else if (n <= ushort.MaxValue) { s.WriteByte(0xc5); WriteBE(s, (ulong)n, 2); }
            else { s.WriteByte(0xc6); WriteBE(s, (ulong)n, 4); }
            s.Write(v, 0, n);
        }

        static void WriteHeader(MemoryStream s, int n, byte fix, byte b16, byte b32)
        {
            if (n < 16) s.WriteByte((byte)(fix | n));
            else if (n <= ushort.MaxValue) { s.WriteByte(b16); WriteBE(s, (ulong)n, 2); }
            else { s.WriteByte(b32); WriteBE(s, (ulong)n, 4); }
        }

        static void WriteBE(MemoryStream s, ulong v, int width)
        {
            for (int shift = 8 * (width - 1); shift >= 0; shift -= 8) s.WriteByte((byte)(v >> shift));
        }

        // --- Decode ---

        /// <summary>Decodes exactly one value spanning the whole buffer.</summary>
        public static object Decode(byte[] data) => Decode(data, 0, data.Length);

        public static object Decode(byte[] data, int offset, int count)
        {
            if (data == null) throw new ArgumentNullException(nameof(data));
            int pos = offset, end = offset + count;
            var value = Read(data, ref pos, end, 0);
            if (pos != end) throw new FormatException($"msgpack: {Protocol.Plural(end - pos, "trailing byte")} after the value at offset {pos - offset}");
            return value;
        }

        /// <summary>Decodes a header part and checks it is a map with a string "type" (§2).</summary>
        public static MsgMap DecodeHeader(byte[] data)
        {
            if (!(Decode(data) is MsgMap map)) throw new FormatException("msgpack: a header must be a map");
            if (!(map["type"] is string)) throw new FormatException("msgpack: a header needs a string \"type\" key");
            return map;
        }

        static object Read(byte[] d, ref int p, int end, int depth)
        {
            if (depth > MaxDepth) throw new FormatException("msgpack: nested deeper than 64 levels");
            Need(p, 1, end);
            byte b = d[p++];
            if (b <= 0x7f) return (long)b;
            if (b >= 0xe0) return (long)(sbyte)b;
            if (b >= 0xa0 && b <= 0xbf) return ReadStr(d, ref p, end, b & 0x1f);
            if (b >= 0x90 && b <= 0x9f) return ReadArray(d, ref p, end, b & 0x0f, depth);
            if (b >= 0x80 && b <= 0x8f) return ReadMap(d, ref p, end, b & 0x0f, depth);
            switch (b)
            {
                case 0xc0: return null;
                case 0xc2: return false;
                case 0xc3: return true;
                case 0xc4: return ReadBin(d, ref p, end, (int)ReadBE(d, ref p, end, 1));
                case 0xc5: return ReadBin(d, ref p, end, (int)ReadBE(d, ref p, end, 2));
                case 0xc6: return ReadBin(d, ref p, end, Length(ReadBE(d, ref p, end, 4)));
                case 0xca: return (double)BitConverter.ToSingle(BitConverter.GetBytes((uint)ReadBE(d, ref p, end, 4)), 0);
                case 0xcb: return BitConverter.Int64BitsToDouble(unchecked((long)ReadBE(d, ref p, end, 8)));
                case 0xcc: return (long)ReadBE(d, ref p, end, 1);
                case 0xcd: return (long)ReadBE(d, ref p, end, 2);
                case 0xce: return (long)ReadBE(d, ref p, end, 4);
                case 0xcf:
                    ulong u = ReadBE(d, ref p, end, 8);
                    return u <= long.MaxValue ? (object)(long)u : u;
                case 0xd0: return (long)unchecked((sbyte)ReadBE(d, ref p, end, 1));
                case 0xd1: return (long)unchecked((short)ReadBE(d, ref p, end, 2));
                case 0xd2: return (long)unchecked((int)ReadBE(d, ref p, end, 4));
                case 0xd3: return unchecked((long)ReadBE(d, ref p, end, 8));
                case 0xd9: return ReadStr(d, ref p, end, (int)ReadBE(d, ref p, end, 1));
                case 0xda: return ReadStr(d, ref p, end, (int)ReadBE(d, ref p, end, 2));
                case 0xdb: return ReadStr(d, ref p, end, Length(ReadBE(d, ref p, end, 4)));
                case 0xdc: return ReadArray(d, ref p, end, (int)ReadBE(d, ref p, end, 2), depth);
                case 0xdd: return ReadArray(d, ref p, end, Length(ReadBE(d, ref p, end, 4)), depth);
                case 0xde: return ReadMap(d, ref p, end, (int)ReadBE(d, ref p, end, 2), depth);
                case 0xdf: return ReadMap(d, ref p, end, Length(ReadBE(d, ref p, end, 4)), depth);
                case 0xc7: case 0xc8: case 0xc9: case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
                    throw new FormatException($"msgpack: ext type 0x{b:x2} at offset {p - 1}: the protocol uses no ext types or timestamps");
                default:
                    throw new FormatException($"msgpack: invalid type byte 0x{b:x2} at offset {p - 1}");
            }
        }

        static string ReadStr(byte[] d, ref int p, int end, int n)
        {
            Need(p, n, end);
            string s;
            try { s = Utf8.GetString(d, p, n); }
            catch (ArgumentException) { throw new FormatException($"msgpack: string at offset {p} is not valid UTF-8"); }
            p += n;
            return s;
        }

        static byte[] ReadBin(byte[] d, ref int p, int end, int n)
        {
            Need(p, n, end);
            var bytes = new byte[n];
            Buffer.BlockCopy(d, p, bytes, 0, n);
            p += n;
            return bytes;
        }

        static List<object> ReadArray(byte[] d, ref int p, int end, int n, int depth)
        {
            Need(p, n, end); // every element takes at least one byte: refuse absurd counts before allocating
            var list = new List<object>(n);
            for (int i = 0; i < n; i++) list.Add(Read(d, ref p, end, depth + 1));
            return list;
        }

        static MsgMap ReadMap(byte[] d, ref int p, int end, int n, int depth)
        {
            Need(p, 2L * n, end);
            var map = new MsgMap();
            for (int i = 0; i < n; i++)
            {
                int at = p;
                if (!(Read(d, ref p, end, depth + 1) is string key))
                    throw new FormatException($"msgpack: map key at offset {at} is not a string (protocol maps have string keys)");
                map[key] = Read(d, ref p, end, depth + 1);
            }
            return map;
        }

        static ulong ReadBE(byte[] d, ref int p, int end, int width)
        {
            Need(p, width, end);
            ulong v = 0;
            for (int i = 0; i < width; i++) v = (v << 8) | d[p++];
            return v;
        }

        static int Length(ulong n)
        {
            if (n > int.MaxValue) throw new FormatException($"msgpack: length {n} is too large");
            return (int)n;
        }

        static void Need(int p, long n, int end)
        {
            if (p + n > end) throw new FormatException($"msgpack: truncated, need {Protocol.Plural(n, "byte")} at offset {p} but only {end - p} remain");
        }
    }
}
