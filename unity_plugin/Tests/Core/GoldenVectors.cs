// Loads docs/protocol/vectors/*.json (the golden vectors every client is held to) with a tiny JSON reader.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using NUnit.Framework;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    public static class GoldenVectors
    {
        /// <summary>WORLDBRIDGE_VECTORS, else docs/protocol/vectors above the working or assembly directory.</summary>
        public static string Directory()
        {
            var env = Environment.GetEnvironmentVariable("WORLDBRIDGE_VECTORS");
            if (!string.IsNullOrEmpty(env)) return env;
            foreach (var start in new[] { Environment.CurrentDirectory, AppDomain.CurrentDomain.BaseDirectory })
                for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                {
                    var candidate = Path.Combine(dir.FullName, "docs", "protocol", "vectors");
                    if (File.Exists(Path.Combine(candidate, "msgpack.json"))) return candidate;
                }
            return null;
        }

        /// <summary>The vectors of one file by name: each a map of its JSON fields (value kept as tagged JSON).</summary>
        public static List<Dictionary<string, object>> Load(string file)
        {
            var dir = Directory();
            if (dir == null || !File.Exists(Path.Combine(dir, file)))
                Assert.Ignore($"golden vectors not found: set WORLDBRIDGE_VECTORS to the repository's docs/protocol/vectors");
            var root = (List<KeyValuePair<string, object>>)new Json(File.ReadAllText(Path.Combine(dir, file), Encoding.UTF8)).Parse();
            var result = new List<Dictionary<string, object>>();
            foreach (var v in (List<object>)Field(root, "vectors"))
            {
                var d = new Dictionary<string, object>();
                foreach (var kv in (List<KeyValuePair<string, object>>)v) d[kv.Key] = kv.Value;
                result.Add(d);
            }
            return result;
        }

        public static Dictionary<string, object> ByName(List<Dictionary<string, object>> vectors, string name)
        {
            foreach (var v in vectors) if ((string)v["name"] == name) return v;
            throw new AssertionException($"golden vector '{name}' is missing");
        }

        static object Field(List<KeyValuePair<string, object>> obj, string key)
        {
            foreach (var kv in obj) if (kv.Key == key) return kv.Value;
            throw new FormatException($"JSON object has no '{key}'");
        }

        /// <summary>Tagged JSON → the representation MsgPack.Decode returns ({"$f64"} → double, {"$bin"} → byte[]).</summary>
        public static object Untag(object json)
        {
            if (json is List<KeyValuePair<string, object>> obj)
            {
                if (obj.Count == 1 && obj[0].Key == "$f64") return Convert.ToDouble(obj[0].Value, CultureInfo.InvariantCulture);
                if (obj.Count == 1 && obj[0].Key == "$bin") return Hex((string)obj[0].Value);
                var map = new MsgMap();
                foreach (var kv in obj) map[kv.Key] = Untag(kv.Value);
                return map;
            }
            if (json is List<object> list) return list.ConvertAll(Untag);
            return json;
        }

        public static byte[] Hex(string hex)
        {
            var bytes = new byte[hex.Length / 2];
            for (int i = 0; i < bytes.Length; i++) bytes[i] = byte.Parse(hex.Substring(2 * i, 2), NumberStyles.HexNumber);
            return bytes;
        }

        public static string ToHex(byte[] bytes)
        {
            var sb = new StringBuilder(bytes.Length * 2);
            foreach (var b in bytes) sb.Append(b.ToString("x2"));
            return sb.ToString();
        }

        /// <summary>Strict structural equality: same types, same order of map keys, floats bit for bit.</summary>
        public static string Difference(object expected, object actual, string path = "$")
        {
            if (expected == null || actual == null)
                return expected == actual ? null : $"{path}: expected {Show(expected)}, got {Show(actual)}";
            if (expected.GetType() != actual.GetType())
                return $"{path}: expected a {expected.GetType().Name} {Show(expected)}, got a {actual.GetType().Name} {Show(actual)}";
            if (expected is double de)
                return BitConverter.DoubleToInt64Bits(de) == BitConverter.DoubleToInt64Bits((double)actual) ? null : $"{path}: expected {de:R}, got {(double)actual:R}";
            if (expected is byte[] be)
                return ToHex(be) == ToHex((byte[])actual) ? null : $"{path}: bytes differ";
            if (expected is MsgMap me)
            {
                var ma = (MsgMap)actual;
                if (string.Join(",", me.Keys) != string.Join(",", ma.Keys))
                    return $"{path}: keys [{string.Join(",", me.Keys)}] != [{string.Join(",", ma.Keys)}]";
                foreach (var k in me.Keys) { var d = Difference(me[k], ma[k], path + "." + k); if (d != null) return d; }
                return null;
            }
            if (expected is List<object> le)
            {
                var la = (List<object>)actual;
                if (le.Count != la.Count) return $"{path}: {le.Count} items expected, got {la.Count}";
                for (int i = 0; i < le.Count; i++) { var d = Difference(le[i], la[i], $"{path}[{i}]"); if (d != null) return d; }
                return null;
            }
            return expected.Equals(actual) ? null : $"{path}: expected {Show(expected)}, got {Show(actual)}";
        }

        static string Show(object v) => v == null ? "null" : v is string s ? $"\"{s}\"" : v.ToString();
    }

    /// <summary>Just enough JSON: objects keep key order, integers become long (ulong above long.MaxValue).</summary>
    public sealed class Json
    {
        readonly string s;
        int p;

        public Json(string text) { s = text; }

        public object Parse()
        {
            var v = Value();
            Skip();
            if (p != s.Length) throw Error("trailing characters");
            return v;
        }

        object Value()
        {
            Skip();
            if (p >= s.Length) throw Error("unexpected end");
            char c = s[p];
            if (c == '{') return Object();
            if (c == '[') return Array();
            if (c == '"') return String();
            if (Literal("null")) return null;
            if (Literal("true")) return true;
            if (Literal("false")) return false;
            return Number();
        }

        List<KeyValuePair<string, object>> Object()
        {
            var obj = new List<KeyValuePair<string, object>>();
            p++;
            Skip();
            if (s[p] == '}') { p++; return obj; }
            while (true)
            {
                Skip();
                var key = String();
                Skip();
                Expect(':');
                obj.Add(new KeyValuePair<string, object>(key, Value()));
                Skip();
                if (s[p] == ',') { p++; continue; }
                Expect('}');
                return obj;
            }
        }

        List<object> Array()
        {
            var list = new List<object>();
            p++;
            Skip();
            if (s[p] == ']') { p++; return list; }
            while (true)
            {
                list.Add(Value());
                Skip();
                if (s[p] == ',') { p++; continue; }
                Expect(']');
                return list;
            }
        }

        string String()
        {
            Expect('"');
            var sb = new StringBuilder();
            while (s[p] != '"')
            {
                char c = s[p++];
                if (c != '\\') { sb.Append(c); continue; }
                char e = s[p++];
                if (e == 'u') { sb.Append((char)Convert.ToInt32(s.Substring(p, 4), 16)); p += 4; }
                else sb.Append(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e);
            }
            p++;
            return sb.ToString();
        }

        object Number()
        {
            int start = p;
            while (p < s.Length && "+-0123456789.eE".IndexOf(s[p]) >= 0) p++;
            var token = s.Substring(start, p - start);
            if (token.Length == 0) throw Error("unexpected character");
            if (token.IndexOfAny(new[] { '.', 'e', 'E' }) >= 0) return double.Parse(token, CultureInfo.InvariantCulture);
            if (token[0] == '-') return long.Parse(token, CultureInfo.InvariantCulture);
            var u = ulong.Parse(token, CultureInfo.InvariantCulture);
            return u <= long.MaxValue ? (object)(long)u : u;
        }

        bool Literal(string word)
        {
            if (string.CompareOrdinal(s, p, word, 0, word.Length) != 0) return false;
            p += word.Length;
            return true;
        }

        void Expect(char c)
        {
            if (p >= s.Length || s[p] != c) throw Error($"expected '{c}'");
            p++;
        }

        void Skip() { while (p < s.Length && char.IsWhiteSpace(s[p])) p++; }

        FormatException Error(string what) => new FormatException($"JSON: {what} at offset {p}");
    }
}
