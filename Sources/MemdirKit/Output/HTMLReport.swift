// HTMLReport.swift: `memdir report --html`: one self-contained HTML file (inline style and
// script, no network, no fonts) with an icicle graph of live bytes by stack (click to zoom,
// hover for `function file:line`, blocks and bytes), a chart of live bytes over time for the
// top groups when snapshots or a watch history are given, and the text report. The data is
// built here; the page's script only lays it out.

/// One node of the icicle: a frame, with what was allocated under it.
public final class FlameNode {
    public let name: String
    public var bytes: UInt64 = 0
    public var blocks = 0
    public var children: [FlameNode] = []
    private var index: [String: Int] = [:]

    public init(name: String) { self.name = name }

    func child(_ name: String) -> FlameNode {
        if let i = index[name] { return children[i] }
        let node = FlameNode(name: name)
        index[name] = children.count
        children.append(node)
        return node
    }

    /// Adds a stack (outermost frame first).
    public func add(_ frames: [String], bytes: UInt64, blocks: Int) {
        var node = self
        node.bytes &+= bytes; node.blocks += blocks
        for f in frames {
            node = node.child(f)
            node.bytes &+= bytes; node.blocks += blocks
        }
    }

    func json() -> JSONValue {
        .object([("n", .string(name)), ("v", .unsigned(bytes)), ("b", .number(Int64(blocks))),
                 ("c", .array(children.sorted { $0.bytes > $1.bytes }.map { $0.json() }))])
    }
}

/// A line of the chart: one group's live bytes at moments (unix ms), or a process's total.
public struct ChartSeries: Sendable {
    public var label: String
    public var points: [(time: Int, bytes: UInt64)]
    /// A process's whole live heap (its counters), drawn dashed behind the groups.
    public var total = false
}

/// What the chart was made from, so a page without a line can say precisely what is missing.
public struct ChartInputs: Sendable {
    public var snapshots = 0
    public var history: String?
    /// Lines of the history, the distinct moments among them, and those with groups (watch
    /// rescans the directory for groups every --rescan samples) or with totals (counters).
    public var historySamples = 0
    public var historyMoments = 0
    public var historyGroupMoments = 0
    public var historyTotalMoments = 0

    public init() {}

    public init(snapshots: Int, history: String?, samples: [WatchSample]) {
        self.snapshots = snapshots
        self.history = history
        historySamples = samples.count
        historyMoments = Set(samples.map(\.timeUnixMs)).count
        historyGroupMoments = Set(samples.filter { !($0.groups ?? []).isEmpty }.map(\.timeUnixMs)).count
        historyTotalMoments = Set(samples.filter { $0.counters != nil }.map(\.timeUnixMs)).count
    }
}

public struct HTMLReport {
    public var title: String
    public var flame: FlameNode
    /// The largest group (by bytes), as its resolved location.
    public var largest: String?
    public var series: [ChartSeries]
    public var summary: String
    public var inputs = ChartInputs()
    /// What the icicle holds, said above it.
    public var flameNote = ""

    /// The icicle from a report grouped by whole stack: per process a root frame, then (once the
    /// blocks are classified, after exit) the kind, then the stack.
    public static func flame(_ report: Report) -> FlameNode {
        let root = FlameNode(name: "all live blocks")
        for p in report.processes {
            let process = "process \(p.process.map { String($0.pid) } ?? p.name) \(baseName(p.process?.exe ?? "?"))"
            for g in p.leaks {
                let kind = g.kind == .notClassified ? [] : [g.kind.words]
                root.add([process] + kind + FoldedFormatter.frameNames(g.stack), bytes: g.bytes, blocks: g.blocks)
            }
        }
        return root
    }

    /// Series for the `top` groups (largest at the last moment) from snapshots and watch samples,
    /// named by `labels` (key -> resolved location) where the group has no location of its own;
    /// plus each process's total live bytes where counters are known.
    public static func series(snapshots: [Snapshot], history: [WatchSample], labels: [String: String] = [:], top: Int = 5) -> [ChartSeries] {
        var points: [String: [(Int, UInt64)]] = [:]
        var names: [String: String] = [:]
        var totals: [String: [(Int, UInt64)]] = [:]
        for s in snapshots {
            for p in s.processes {
                var byKey: [String: UInt64] = [:]
                for g in p.groups { byKey[g.key, default: 0] &+= g.bytes }
                for (k, v) in byKey { points["\(p.name) \(k)", default: []].append((s.takenUnixMs, v)); names["\(p.name) \(k)"] = labels[k] ?? k }
                if let c = p.counters { totals[p.pid.map(String.init) ?? p.name, default: []].append((s.takenUnixMs, UInt64(max(0, c.heapCurrent)))) }
            }
        }
        for h in history {
            for g in h.groups ?? [] {
                let id = "\(baseName(h.runDirectory)) \(g.key)"
                points[id, default: []].append((h.timeUnixMs, g.bytes))
                names[id] = g.location == g.key ? labels[g.key] ?? g.location : g.location
            }
            if let c = h.counters { totals[h.pid.map(String.init) ?? baseName(h.runDirectory), default: []].append((h.timeUnixMs, UInt64(max(0, c.heapCurrent)))) }
        }
        func line(_ list: [(Int, UInt64)]) -> [(time: Int, bytes: UInt64)] { list.sorted { $0.0 < $1.0 }.map { (time: $0.0, bytes: $0.1) } }
        let last = points.mapValues { $0.max { $0.0 < $1.0 }?.1 ?? 0 }
        let groups = points.keys.sorted { (last[$0]!, $1) > (last[$1]!, $0) }.prefix(top).map { id in
            ChartSeries(label: names[id] ?? id, points: line(points[id]!))
        }
        return totals.keys.sorted().map { ChartSeries(label: "all live bytes of process \($0)", points: line(totals[$0]!), total: true) } + groups
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            // Line breaks and tabs of the text report stay (it is shown in a <pre>); other
            // control bytes, which can come only from names, as the text report writes them (`\xHH`).
            case "\n", "\t": out.append(c)
            case _ where c.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }: out += String(c).printable
            default: out.append(c)
            }
        }
        return out
    }

    /// Why there is no line, or what the line lacks, in words that name the inputs given.
    func chartNotes(moments: Int) -> [String] {
        let i = inputs
        if i.snapshots == 0 && i.history == nil {
            return ["No history: give <code>--snapshot FILE</code> (from <code>memdir snapshot</code>, two or more) or <code>--history FILE</code> (from <code>memdir watch --json</code>) for a chart of live bytes over time."]
        }
        var notes: [String] = []
        if let history = i.history {
            let file = "<code>\(Self.escape(history))</code>"
            if i.historySamples == 0 {
                notes.append("The history \(file) has no samples.")
            } else if i.historyMoments < 2 {
                notes.append("The history \(file) has \(i.historySamples == 1 ? "one sample" : "\(i.historySamples) samples of one moment"): let <code>memdir watch --json</code> run for two intervals or more (<code>--count 2</code>) for a line.")
            } else if i.historyGroupMoments < i.historyMoments {
                notes.append("The history \(file) has \(i.historyMoments) moments\(i.historyTotalMoments > 0 ? " of totals" : ""), groups at \(i.historyGroupMoments) of them (<code>memdir watch</code> rescans the directory for groups every 5 samples by default; <code>--rescan 1</code> samples them every time).")
            }
        }
        if i.snapshots == 1 { notes.append("One snapshot was given: take another (<code>memdir snapshot DIR -o FILE</code>) for a line.") }
        if moments < 2 && notes.isEmpty { notes.append("The snapshots and history hold \(moments) moment\(moments == 1 ? "" : "s"): a line needs two.") }
        return notes
    }

    /// The chart as inline SVG: time on x, bytes on y, one polyline per series (a dot for a
    /// group seen at one moment only), and a note for what is missing.
    func chart() -> String {
        let all = series.flatMap(\.points)
        let moments = Set(all.map(\.time)).count
        let notes = chartNotes(moments: moments).map { "<p class=\"note\" id=\"chart-note\">\($0)</p>" }.joined()
        guard moments >= 2, let t0 = all.map(\.time).min(), let t1 = all.map(\.time).max() else { return notes }
        let maxBytes = max(all.map(\.bytes).max() ?? 1, 1)
        let w = 900.0, h = 260.0, left = 70.0, bottom = 24.0
        let colors = ["#d9480f", "#1c7ed6", "#2b8a3e", "#ae3ec9", "#f08c00"]
        func color(_ i: Int) -> String { series[i].total ? "#868e96" : colors[(i - series.filter(\.total).count) % colors.count] }
        var svg = "<svg id=\"chart\" viewBox=\"0 0 \(Int(w + 10)) \(Int(h + bottom + 6))\" width=\"100%\" role=\"img\">"
        svg += "<line x1=\"\(left)\" y1=\"\(h)\" x2=\"\(w)\" y2=\"\(h)\" stroke=\"#888\"/><line x1=\"\(left)\" y1=\"0\" x2=\"\(left)\" y2=\"\(h)\" stroke=\"#888\"/>"
        svg += "<text x=\"\(left - 4)\" y=\"10\" text-anchor=\"end\" class=\"axis\">\(maxBytes) B</text><text x=\"\(left - 4)\" y=\"\(h)\" text-anchor=\"end\" class=\"axis\">0</text>"
        svg += "<text x=\"\(w)\" y=\"\(h + 18)\" text-anchor=\"end\" class=\"axis\">+\(String(format1(Double(t1 - t0) / 1000))) s</text>"
        for (i, s) in series.enumerated() {
            let xy = s.points.map { p -> (String, String) in
                (format1(left + (w - left) * Double(p.time - t0) / Double(t1 - t0)), format1(h - h * Double(p.bytes) / Double(maxBytes)))
            }
            let title = "<title>\(Self.escape(s.label))</title>"
            if xy.count == 1 {
                svg += "<circle cx=\"\(xy[0].0)\" cy=\"\(xy[0].1)\" r=\"4\" fill=\"\(color(i))\">\(title)</circle>"
            } else {
                let dash = s.total ? " stroke-dasharray=\"6 4\"" : ""
                svg += "<polyline fill=\"none\" stroke=\"\(color(i))\" stroke-width=\"2\"\(dash) points=\"\(xy.map { "\($0.0),\($0.1)" }.joined(separator: " "))\">\(title)</polyline>"
            }
        }
        svg += "</svg><ul class=\"legend\">"
        for (i, s) in series.enumerated() {
            svg += "<li><span style=\"background:\(color(i))\"></span>\(Self.escape(s.label)): \(s.points.last?.bytes ?? 0) bytes</li>"
        }
        return svg + "</ul>" + notes
    }

    func format1(_ v: Double) -> String {
        let t = Int((v * 10).rounded())
        return "\(t / 10).\(abs(t % 10))"
    }

    public func render() -> String {
        // "<" only occurs inside JSON strings, where \u003c means the same and cannot close the script.
        let data = flame.json().render().map { $0 == "<" ? "\\u003c" : String($0) }.joined()
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(Self.escape(title))</title>
            <style>
            body { font: 13px/1.4 monospace; margin: 16px; color: #222; background: #fff; }
            h1 { font-size: 18px; } h2 { font-size: 15px; margin-top: 24px; }
            #flame { position: relative; width: 100%; overflow: hidden; border: 1px solid #ccc; }
            .frame { position: absolute; height: 17px; box-sizing: border-box; border: 1px solid #fff; overflow: hidden;
                     white-space: nowrap; padding: 0 3px; cursor: pointer; font-size: 11px; line-height: 15px; }
            .frame:hover { border-color: #000; }
            .ancestor { opacity: 0.6; }
            #details { min-height: 1.4em; margin: 4px 0; }
            #largest { font-weight: bold; }
            .axis { font: 10px monospace; fill: #555; }
            .legend { list-style: none; padding: 0; } .legend span { display: inline-block; width: 12px; height: 12px; margin-right: 6px; }
            .note { color: #666; } pre { background: #f6f6f6; padding: 8px; overflow-x: auto; }
            </style></head><body>
            <h1>\(Self.escape(title))</h1>
            <p>Largest group: <span id="largest">\(Self.escape(largest ?? "none"))</span></p>
            <h2>Live bytes by stack</h2>
            <p class="note" id="flame-note">\(Self.escape(flameNote))</p>
            <p class="note">Outermost frame on top. Click a frame to zoom in, click a faded frame above it to zoom out; hover for details.</p>
            <div id="details"></div>
            <div id="flame"></div>
            <h2>Live bytes over time</h2>
            \(chart())
            <h2>Report</h2>
            <pre id="summary">\(Self.escape(summary))</pre>
            <script type="application/json" id="flame-data">\(data)</script>
            <script>
            (function () {
              var root = JSON.parse(document.getElementById('flame-data').textContent);
              var box = document.getElementById('flame'), details = document.getElementById('details');
              var rowHeight = 17;
              function parents(node, target, path) {
                if (node === target) return path.concat([node]);
                for (var i = 0; i < node.c.length; i++) {
                  var found = parents(node.c[i], target, path.concat([node]));
                  if (found) return found;
                }
                return null;
              }
              function color(name) {
                var h = 0;
                for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
                return 'hsl(' + (10 + h % 40) + ',' + (60 + h % 30) + '%,' + (55 + h % 15) + '%)';
              }
              function describe(node) {
                return node.n + ' \\u2014 ' + node.b + (node.b === 1 ? ' block, ' : ' blocks, ') + node.v + ' bytes';
              }
              function draw(focus) {
                box.textContent = '';
                var chain = parents(root, focus, []) || [root];
                var depth = 0, maxDepth = 0;
                chain.slice(0, -1).forEach(function (node) { add(node, 0, 100, depth++, true); });
                function place(node, x, w, d) {
                  add(node, x, w, d, false);
                  if (d > maxDepth) maxDepth = d;
                  var cx = x;
                  node.c.forEach(function (child) {
                    var cw = node.v > 0 ? w * child.v / node.v : 0;
                    if (cw > 0.05) place(child, cx, cw, d + 1);
                    cx += cw;
                  });
                }
                place(focus, 0, 100, depth);
                box.style.height = ((maxDepth + 1) * rowHeight + 2) + 'px';
                function add(node, x, w, d, ancestor) {
                  var el = document.createElement('div');
                  el.className = 'frame' + (ancestor ? ' ancestor' : '');
                  el.style.left = x + '%'; el.style.width = w + '%'; el.style.top = (d * rowHeight) + 'px';
                  el.style.background = color(node.n);
                  el.textContent = node.n;
                  el.title = describe(node);
                  el.setAttribute('data-bytes', node.v);
                  el.onmouseover = function () { details.textContent = describe(node); };
                  el.onclick = function () { draw(node); };
                  box.appendChild(el);
                }
              }
              draw(root);
            })();
            </script>
            </body></html>

            """
    }
}
