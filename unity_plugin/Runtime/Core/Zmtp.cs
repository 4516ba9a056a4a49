// A minimal ZMTP 3.0 DEALER (NULL mechanism) over any Stream: enough to talk to a libzmq ROUTER without native
// plugins (NetMQ freezes the Unity editor on domain reload; a TcpClient we own is closed cleanly in OnDisable).
using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace WorldBridge.Core
{
    /// <summary>The peer broke the ZMTP protocol, closed the connection, or sent an oversized message.</summary>
    public sealed class ZmtpException : IOException
    {
        /// <summary>Trying again cannot help (the host asks for a security mechanism this client lacks).</summary>
        public readonly bool Fatal;

        public ZmtpException(string message, bool fatal = false) : base(message) { Fatal = fatal; }
    }

    public sealed class ZmtpDealer : IDisposable
    {
        const byte More = 1, Long = 2, Command = 4;

        /// <summary>Signature FF, 8 padding, 7F, version 3.0, "NULL" padded to 20, as-server 0, 31 filler bytes.</summary>
        public static byte[] Greeting()
        {
            var g = new byte[64];
            g[0] = 0xff; g[9] = 0x7f; g[10] = 3; g[11] = 0;
            Encoding.ASCII.GetBytes("NULL", 0, 4, g, 12);
            return g;
        }

        readonly Stream stream;
        readonly TcpClient tcp;
        readonly object sendLock = new object();

        /// <summary>Messages (all parts together) larger than this are refused before their bytes are allocated.</summary>
        public long MaxMessageBytes = 64L << 20;

        /// <summary>The properties of the peer's READY command (libzmq's ROUTER sends Socket-Type and an empty Identity).</summary>
        public Dictionary<string, byte[]> PeerProperties { get; private set; }

        public ZmtpDealer(Stream stream, TcpClient owner = null)
        {
            this.stream = stream ?? throw new ArgumentNullException(nameof(stream));
            tcp = owner;
        }

        /// <summary>
        /// Opens a TCP connection to "tcp://host:port" and completes the ZMTP handshake; cancelling `cancel` closes the
        /// socket at once (OperationCanceledException or an IOException), so a Close() need not wait out the timeouts.
        /// </summary>
        public static ZmtpDealer Connect(string endpoint, int timeoutMs, IEnumerable<KeyValuePair<string, string>> properties = null,
                                         CancellationToken cancel = default(CancellationToken))
        {
            var (host, port) = ParseEndpoint(endpoint);
            var tcp = new TcpClient { NoDelay = true };
            var closeOnCancel = cancel.Register(tcp.Close);
            try
            {
                var connecting = tcp.ConnectAsync(host, port);
                if (!connecting.Wait(timeoutMs, cancel))
                    throw new ZmtpException($"no host answered at {endpoint} within {timeoutMs} ms: is `worldbridge serve` running?");
                tcp.ReceiveTimeout = timeoutMs; // stays until SetReceiveTimeout(0): the caller's own hello needs it too
                tcp.SendTimeout = timeoutMs;
                var dealer = new ZmtpDealer(tcp.GetStream(), tcp);
                dealer.Handshake(properties);
                return dealer;
            }
            catch (AggregateException e)
            {
                tcp.Close();
                throw new ZmtpException($"cannot connect to {endpoint}: {e.InnerException?.Message}. Start the host with `worldbridge serve`.");
            }
            catch
            {
                tcp.Close();
                throw;
            }
            finally
            {
                closeOnCancel.Dispose(); // from here on, whoever owns the dealer closes it
            }
        }

        public static (string host, int port) ParseEndpoint(string endpoint)
        {
            const string scheme = "tcp://";
            if (endpoint == null || !endpoint.StartsWith(scheme, StringComparison.Ordinal))
                throw new ArgumentException($"endpoint '{endpoint}' must look like tcp://127.0.0.1:5555");
            var rest = endpoint.Substring(scheme.Length);
            int colon = rest.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(rest.Substring(colon + 1), out var port) || port <= 0 || port > 65535)
                throw new ArgumentException($"endpoint '{endpoint}' needs a host and a port 1-65535, e.g. tcp://127.0.0.1:5555");
            return (rest.Substring(0, colon).Trim('[', ']'), port);
        }

        /// <summary>Read timeout in ms (0 = wait forever, once the session handshake is done); TCP connections only.</summary>
        public void SetReceiveTimeout(int ms)
        {
            if (tcp != null) tcp.ReceiveTimeout = ms;
        }

        // --- Handshake ---

        /// <summary>Greeting exchange, then READY both ways; extra properties (e.g. X-Client) go into our READY.</summary>
        public void Handshake(IEnumerable<KeyValuePair<string, string>> properties = null)
        {
            Write(Greeting());
            var greeting = new byte[64];
            ReadExactly(greeting, 0, 64);
            CheckGreeting(greeting);
            var props = new List<KeyValuePair<string, byte[]>> { new KeyValuePair<string, byte[]>("Socket-Type", Encoding.ASCII.GetBytes("DEALER")) };
            if (properties != null)
                foreach (var p in properties) props.Add(new KeyValuePair<string, byte[]>(p.Key, Encoding.UTF8.GetBytes(p.Value ?? "")));
            Write(EncodeCommand("READY", EncodeProperties(props)));

            var frame = ReadFrame(MaxMessageBytes);
            if (!frame.command) throw new ZmtpException("expected the host's READY command, got a message frame");
            var (name, data) = ParseCommand(frame.body);
            if (name == "ERROR") throw new ZmtpException($"host refused the handshake: {ErrorReason(data)}");
            if (name != "READY") throw new ZmtpException($"expected READY from the host, got {name}");
            PeerProperties = ParseProperties(data);
            var type = PeerProperties.TryGetValue("Socket-Type", out var t) ? Encoding.ASCII.GetString(t) : "";
            if (type != "ROUTER" && type != "DEALER" && type != "REP")
                throw new ZmtpException($"the host's socket type is '{type}', a DEALER needs a ROUTER: is this a WorldBridge host?");
        }

        /// <summary>Accepts any greeting with byte 0 = FF, byte 9 bit 0 set, major >= 3 and the NULL mechanism.</summary>
        public static void CheckGreeting(byte[] g)
        {
            if (g.Length < 64 || g[0] != 0xff || (g[9] & 1) == 0)
                throw new ZmtpException("the peer did not send a ZMTP greeting: is this port a ZeroMQ socket?");
            if (g[10] < 3)
                throw new ZmtpException($"the peer speaks ZMTP {g[10]}.x, WorldBridge needs ZMTP 3 (libzmq >= 4)");
            var mechanism = Encoding.ASCII.GetString(g, 12, 20).TrimEnd('\0');
            if (mechanism != "NULL")
                throw new ZmtpException($"the host uses the {mechanism} security mechanism; this client only speaks NULL (bind the host to loopback)", fatal: true);
        }

        // --- Framing ---

        /// <summary>One frame: flags (bit0 MORE, bit1 LONG, bit2 COMMAND), 1- or 8-byte big-endian size, body.</summary>
        public static byte[] EncodeFrame(byte[] body, bool more, bool command = false)
        {
            bool isLong = body.Length > 255;
            var frame = new byte[(isLong ? 9 : 2) + body.Length];
            frame[0] = (byte)((more ? More : 0) | (isLong ? Long : 0) | (command ? Command : 0));
            if (isLong) for (int i = 0; i < 8; i++) frame[1 + i] = (byte)((ulong)body.Length >> (56 - 8 * i));
            else frame[1] = (byte)body.Length;
            Buffer.BlockCopy(body, 0, frame, isLong ? 9 : 2, body.Length);
            return frame;
        }

        public static byte[] EncodeCommand(string name, byte[] data)
        {
            var n = Encoding.ASCII.GetBytes(name);
            var body = new byte[1 + n.Length + data.Length];
            body[0] = (byte)n.Length;
            Buffer.BlockCopy(n, 0, body, 1, n.Length);
            Buffer.BlockCopy(data, 0, body, 1 + n.Length, data.Length);
            return EncodeFrame(body, false, true);
        }

        /// <summary>Property list: name length (1 byte), name, value length (4 bytes big-endian), value.</summary>
        public static byte[] EncodeProperties(IEnumerable<KeyValuePair<string, byte[]>> props)
        {
            var s = new MemoryStream();
            foreach (var p in props)
            {
                var name = Encoding.ASCII.GetBytes(p.Key);
                if (name.Length == 0 || name.Length > 255) throw new ArgumentException($"ZMTP property name '{p.Key}' must be 1-255 bytes");
                s.WriteByte((byte)name.Length);
                s.Write(name, 0, name.Length);
                var v = p.Value;
                s.WriteByte((byte)(v.Length >> 24)); s.WriteByte((byte)(v.Length >> 16)); s.WriteByte((byte)(v.Length >> 8)); s.WriteByte((byte)v.Length);
                s.Write(v, 0, v.Length);
            }
            return s.ToArray();
        }

        public static Dictionary<string, byte[]> ParseProperties(byte[] data)
        {
            var props = new Dictionary<string, byte[]>();
            int p = 0;
            while (p < data.Length)
            {
                int nameLen = data[p++];
                if (p + nameLen + 4 > data.Length) throw new ZmtpException("truncated ZMTP property list");
                var name = Encoding.ASCII.GetString(data, p, nameLen);
                p += nameLen;
                long valueLen = ((long)data[p] << 24) | ((long)data[p + 1] << 16) | ((long)data[p + 2] << 8) | data[p + 3];
                p += 4;
                if (p + valueLen > data.Length) throw new ZmtpException($"truncated ZMTP property '{name}'");
                var value = new byte[valueLen];
                Buffer.BlockCopy(data, p, value, 0, (int)valueLen);
                p += (int)valueLen;
                props[name] = value;
            }
            return props;
        }

        static (string name, byte[] data) ParseCommand(byte[] body)
        {
            if (body.Length < 1 || body.Length < 1 + body[0]) throw new ZmtpException("truncated ZMTP command");
            var name = Encoding.ASCII.GetString(body, 1, body[0]);
            var data = new byte[body.Length - 1 - body[0]];
            Buffer.BlockCopy(body, 1 + body[0], data, 0, data.Length);
            return (name, data);
        }

        static string ErrorReason(byte[] data) => data.Length > 0 ? Encoding.ASCII.GetString(data, 1, Math.Min(data[0], data.Length - 1)) : "";

        // --- Messages ---

        /// <summary>Sends one multipart message; thread-safe (frames of two messages never interleave).</summary>
        public void Send(params byte[][] parts)
        {
            if (parts.Length == 0) throw new ArgumentException("a ZMTP message needs at least one part");
            long total = 0;
            foreach (var part in parts) total += part.Length + 9;
            var buffer = new MemoryStream((int)Math.Min(total, int.MaxValue));
            for (int i = 0; i < parts.Length; i++)
            {
                var frame = EncodeFrame(parts[i], i < parts.Length - 1);
                buffer.Write(frame, 0, frame.Length);
            }
            Write(buffer.GetBuffer(), (int)buffer.Length);
        }

        /// <summary>Blocks until the next message; answers PING with PONG and skips other commands on the way.</summary>
        public List<byte[]> Receive()
        {
            var parts = new List<byte[]>();
            long total = 0;
            while (true)
            {
                var (isCommand, more, body) = ReadFrame(MaxMessageBytes - total);
                if (isCommand)
                {
                    var (name, data) = ParseCommand(body);
                    if (name == "PING" && data.Length >= 2)
                    {
                        var context = new byte[data.Length - 2];
                        Buffer.BlockCopy(data, 2, context, 0, context.Length);
                        Write(EncodeCommand("PONG", context));
                    }
                    else if (name == "ERROR") throw new ZmtpException($"host closed the connection: {ErrorReason(data)}");
                    continue;
                }
                parts.Add(body);
                total += body.Length;
                if (!more) return parts;
            }
        }

        (bool command, bool more, byte[] body) ReadFrame(long maxBytes)
        {
            var head = new byte[9];
            ReadExactly(head, 0, 2);
            byte flags = head[0];
            if ((flags & ~(More | Long | Command)) != 0) throw new ZmtpException($"invalid ZMTP frame flags 0x{flags:x2}");
            ulong size = head[1];
            if ((flags & Long) != 0)
            {
                ReadExactly(head, 2, 7);
                size = 0;
                for (int i = 1; i < 9; i++) size = (size << 8) | head[i];
            }
            if (size > (ulong)Math.Max(0, maxBytes) || size > int.MaxValue)
                throw new ZmtpException($"the host sent a message larger than MaxMessageBytes ({MaxMessageBytes} bytes); raise the limit or lower the host's frame size");
            var body = new byte[size];
            ReadExactly(body, 0, body.Length);
            return ((flags & Command) != 0, (flags & More) != 0, body);
        }

        void ReadExactly(byte[] buffer, int offset, int count)
        {
            while (count > 0)
            {
                int n = stream.Read(buffer, offset, count);
                if (n <= 0) throw new ZmtpException("the host closed the connection");
                offset += n;
                count -= n;
            }
        }

        void Write(byte[] data) => Write(data, data.Length);

        void Write(byte[] data, int count)
        {
            lock (sendLock) { stream.Write(data, 0, count); stream.Flush(); }
        }

        public void Dispose()
        {
            try { stream.Dispose(); } catch (IOException) { }
            tcp?.Close();
        }
    }
}
