// Interop check driven by tests/test_unity_interop.py: plays a step-mode session against a real host through the
// same protocol core the Unity components use, and writes one line per frame (index, epoch, action, SHA-256 of the
// pixels) so pytest can compare them with what the Python client gets for the same seed and inputs.
// Usage: mono InteropClient.exe --endpoint tcp://127.0.0.1:5555 --seed 7 --actions 2,2,3,0 --out frames.txt
//        [--backend sandbox] [--event first|<type>|none] [--idle-after N --idle-ms MS] [--edit layer.png:X:Y]
// --edit (protocol 1.1) pastes the PNG at frame pixel (X, Y) after the inputs (and the event), then sends one more input;
// it writes `edit ok EPOCH INDEX<TAB>EVENTS` + the edited frame, or `edit error CODE<TAB>MESSAGE`, then the next frame.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using WorldBridge.Core;

public static class InteropClient
{
    public static int Main(string[] args)
    {
        try { return Run(Parse(args)); }
        catch (Exception e)
        {
            Console.Error.WriteLine("interop client failed: " + e.Message);
            return 1;
        }
    }

    static Dictionary<string, string> Parse(string[] args)
    {
        var o = new Dictionary<string, string> { { "backend", "sandbox" }, { "event", "first" }, { "idle-after", "-1" }, { "idle-ms", "0" } };
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--")) throw new ArgumentException($"unexpected argument '{args[i]}'");
            o[args[i].Substring(2)] = args[i + 1];
        }
        foreach (var required in new[] { "endpoint", "seed", "actions", "out" })
            if (!o.ContainsKey(required)) throw new ArgumentException($"missing --{required} (see the usage line in InteropClient.cs)");
        return o;
    }

    static int Run(Dictionary<string, string> o)
    {
        var actions = Array.ConvertAll(o["actions"].Split(','), int.Parse);
        var lines = new List<string>();
        var c = new WorldBridgeConnection(new ConnectionOptions { Endpoint = o["endpoint"], Client = "unity-interop/" + Protocol.PluginVersion, Reconnect = false });
        c.Connect();
        if (!c.WaitReady(15000)) throw new Exception("no welcome from the host: " + c.LastError);
        lines.Add($"welcome {c.Welcome.Host} {c.Welcome.ProtocolMajor}.{c.Welcome.ProtocolMinor}");

        var startId = c.Start(new StartOptions { Backend = o["backend"], Mode = "step", Seed = long.Parse(o["seed"]) });
        Expect(c, "session", startId);
        var s = c.Session;
        lines.Add($"session {s.SessionId} {s.BackendKind} {s.Width}x{s.Height} {string.Join(",", s.ActionNames)}");
        lines.Add($"capabilities {(s.Capabilities.Declared ? "declared" : "implied")} {string.Join(",", s.Capabilities.Names)}");
        long index = 0, epoch = 0;

        var watch = Stopwatch.StartNew();
        lines.Add(FrameLine(Next(c, 0, 0)));
        int idleAfter = int.Parse(o["idle-after"]);
        for (int i = 0; i < actions.Length; i++)
        {
            if (i == idleAfter) Thread.Sleep(int.Parse(o["idle-ms"])); // long enough for heartbeats to need PONGs
            c.Input(actions[i]);
            lines.Add(FrameLine(Next(c, ++index, epoch)));
        }
        var stepMs = watch.Elapsed.TotalMilliseconds / Math.Max(1, actions.Length);

        if (o["event"] != "none")
        {
            var type = o["event"] == "first" ? s.EventTypes[0] : o["event"];
            var ok = Expect(c, "ok", c.Event(type));
            c.Input(0);
            var after = Next(c, ++index, epoch);
            lines.Add($"event {type}\t{ok.GetString("caption")}\t{string.Join("|", after.Events)}");
        }
        if (o.ContainsKey("edit"))
        {
            var spec = o["edit"].Split(':');
            if (spec.Length != 3) throw new ArgumentException($"--edit takes layer.png:X:Y, got '{o["edit"]}'");
            var id = c.Edit(File.ReadAllBytes(spec[0]), int.Parse(spec[1]), int.Parse(spec[2]));
            try
            {
                var ok = c.WaitReply(id, 15000);
                if (ok.GetString("request") != "edit" || ok.GetLong("frame_index") != index || ok.GetLong("epoch") <= epoch)
                    throw new Exception($"edit answered request={ok.GetString("request")} epoch={ok.GetLong("epoch")} frame_index={ok.GetLong("frame_index")} at frame {index} of epoch {epoch}");
                epoch = ok.GetLong("epoch");
                var edited = Next(c, index, epoch);
                lines.Add($"edit ok {epoch} {index}\t{string.Join("|", edited.Events)}");
                lines.Add(FrameLine(edited));
            }
            catch (WorldBridgeException e) { lines.Add($"edit error {e.Error.Code}\t{e.Error.Message}"); }
            c.Input(0);
            lines.Add("after_edit " + FrameLine(Next(c, ++index, epoch)));
        }
        lines.Add($"stats frames={c.FramesReceived} dropped={c.FramesDropped} step_ms={stepMs:F2}");
        c.Close();
        lines.Add($"closed {c.State}");
        var tmp = o["out"] + ".tmp";
        File.WriteAllLines(tmp, lines);
        if (File.Exists(o["out"])) File.Delete(o["out"]);
        File.Move(tmp, o["out"]);
        return 0;
    }

    static WorldFrame Next(WorldBridgeConnection c, long index, long epoch)
    {
        if (!c.WaitFrame(10000, out var f)) throw new Exception($"frame {index} did not arrive: {c.LastError}");
        if (f.Index != index || f.Epoch != epoch) throw new Exception($"expected frame {index} of epoch {epoch}, got frame {f.Index} of epoch {f.Epoch}");
        return f;
    }

    static MsgMap Expect(WorldBridgeConnection c, string type, long reqId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if (!c.TryReceiveMessage(out var m, 100)) continue;
            var t = m.GetString("type");
            if (t == "error") throw new Exception($"host answered {m.GetString("code")}: {m.GetString("message")}");
            if (t == type && m.GetLong("req_id", -1) == reqId) return m;
        }
        throw new Exception($"no '{type}' answer to request {reqId}: {c.LastError}");
    }

    static string FrameLine(WorldFrame f)
    {
        using (var sha = SHA256.Create())
        {
            var hash = new StringBuilder();
            foreach (var b in sha.ComputeHash(f.Pixels)) hash.Append(b.ToString("x2"));
            return $"frame {f.Index} {f.Epoch} {f.Action} {f.Width}x{f.Height} {hash}";
        }
    }
}
