// DocumentationTests.swift: the documentation where users look for it (issue 19): a README that
// stays a README, the DocC catalog (Sources/MemdirKit/MemdirKit.docc) built by the real docc of
// the toolchain with warnings as errors, over MemdirKit's real symbol graph as swift-docc-plugin
// would build it, every link of README to a file that exists, and the tables that are written
// twice (README's Configuration, the catalog's Configuration and exit statuses) equal to the
// declarations the man page is generated from.

import Foundation
import MemdirKit
import Testing

extension EndToEnd {
    @Suite("Documentation")
    struct DocumentationTests {
        static let docc = distributionTool("docc")
        static let symbolGraphExtract = distributionTool("swift-symbolgraph-extract")
        static let catalog = E2E.packageRoot.appendingPathComponent("Sources/MemdirKit/MemdirKit.docc")

        static func text(_ relativePath: String) throws -> String {
            try String(contentsOf: E2E.packageRoot.appendingPathComponent(relativePath), encoding: .utf8)
        }

        /// The catalog's articles (file names without `.md`), the landing page aside.
        static func articles() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: catalog.path)
                .filter { $0.hasSuffix(".md") && $0 != "MemdirKit.md" }.map { String($0.dropLast(3)) }.sorted()
        }

        /// The first column of the table that follows `heading` (a line of its own) in `text`.
        static func firstColumn(after heading: String, in text: String) throws -> [String] {
            let after = try #require(text.components(separatedBy: "\n\(heading)\n").dropFirst().first, "no \(heading)")
            let rows = after.split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }
            return rows.dropFirst(2).map { row in
                String(row.dropFirst(2).prefix { $0 != "|" }).trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "")
            }
        }

        @Test("docc convert builds the catalog over MemdirKit's symbol graph with no warning, and every article is in it",
              .enabled(if: docc != nil && symbolGraphExtract != nil, "docc or swift-symbolgraph-extract is not on PATH (both ship with the Swift toolchain)"))
        func doccBuildsTheCatalog() throws {
            try withScratch { scratch in
                // MemdirKit's public symbols, from the module this test was built with.
                let graphs = scratch.root.appendingPathComponent("symbol-graphs")
                try FileManager.default.createDirectory(at: graphs, withIntermediateDirectories: true)
                let modules = try E2E.products().appendingPathComponent("Modules")
                let extract = runPlain(Self.symbolGraphExtract!, ["-module-name", "MemdirKit", "-I", modules.path,
                                                                  "-minimum-access-level", "public", "-output-dir", graphs.path])
                #expect(extract.status == 0 && extract.stderrText.isEmpty, "swift-symbolgraph-extract: \(extract.stderrText)")
                #expect(FileManager.default.fileExists(atPath: graphs.appendingPathComponent("MemdirKit.symbols.json").path))

                let output = scratch.root.appendingPathComponent("MemdirKit.doccarchive")
                let converted = runPlain(Self.docc!, ["convert", Self.catalog.path, "--additional-symbol-graph-dir", graphs.path,
                                                      "--output-path", output.path, "--warnings-as-errors"], timeout: 300)
                let said = (converted.stdoutText + converted.stderrText).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(converted.status == 0 && said.isEmpty, "docc (status \(converted.statusDescription)): \(said)")
                guard converted.status == 0 else { return }

                // The landing page is the module's, and each article became a page (a link to a
                // missing article or heading would have been a warning above).
                let pages = output.appendingPathComponent("data/documentation")
                #expect(FileManager.default.fileExists(atPath: pages.appendingPathComponent("memdirkit.json").path))
                let articles = try Self.articles()
                #expect(articles.count >= 10, "\(articles)")
                for article in articles {
                    let page = pages.appendingPathComponent("memdirkit/\(article.lowercased()).json").path
                    #expect(FileManager.default.fileExists(atPath: page), "no page for \(article).md")
                }
            }
        }

        @Test("README.md is at most 300 lines, every link of it to a file resolves, and the landing page curates every article")
        func readmeIsAReadme() throws {
            let readme = try Self.text("README.md")
            let lines = readme.split(separator: "\n", omittingEmptySubsequences: false).count - (readme.hasSuffix("\n") ? 1 : 0)
            #expect(lines <= 300, "README.md has \(lines) lines")

            // Markdown links `[text](target)` that are not web addresses or anchors.
            var targets: [String] = []
            var rest = Substring(readme)
            while let open = rest.range(of: "](") {
                let after = rest[open.upperBound...]
                guard let close = after.firstIndex(of: ")") else { break }
                targets.append(String(after[..<close]))
                rest = after[close...]
            }
            let files = targets.filter { !$0.hasPrefix("http") && !$0.hasPrefix("#") }
            #expect(files.contains { $0.hasPrefix("Sources/MemdirKit/MemdirKit.docc/") }, "README links into the catalog: \(files)")
            #expect(files.contains("Examples/benchmark/README.md"), "README links to the benchmark's results: \(files)")
            for file in files {
                let path = String(file.prefix { $0 != "#" })
                #expect(FileManager.default.fileExists(atPath: E2E.packageRoot.appendingPathComponent(path).path), "README links to \(file), which does not exist")
            }
            // Every article is linked from README and curated on the landing page.
            let landing = try Self.text("Sources/MemdirKit/MemdirKit.docc/MemdirKit.md")
            for article in try Self.articles() {
                #expect(files.contains("Sources/MemdirKit/MemdirKit.docc/\(article).md"), "README does not link \(article).md")
                #expect(landing.contains("- <doc:\(article)>"), "the landing page does not list \(article)")
            }
        }

        @Test("README keeps the test command .ci/run runs")
        func readmeTestCommandIsCIs() throws {
            let ci = try Self.text(".ci/run").split(separator: "\n", omittingEmptySubsequences: false)
            let marker = try #require(ci.firstIndex { $0.hasPrefix("# README's test command") }, ".ci/run names README's test command")
            let command = try #require(ci[(marker + 1)...].first { !$0.isEmpty }.map(String.init))
            #expect(command == "swift build && swift test", "\(command)")
            let readme = try Self.text("README.md")
            let codeLines = readme.components(separatedBy: "```").enumerated().filter { $0.offset % 2 == 1 }
                .flatMap { $0.element.split(separator: "\n").map { String($0) } }
            #expect(codeLines.contains { $0 == command || $0.hasPrefix(command + " ") }, "README shows `\(command)` in a code block")
        }

        @Test("README's Configuration table, the catalog's and the man page's environment name the same MEM_ variables, in the same order")
        func configurationTablesAgree() throws {
            let fromReadme = try Self.firstColumn(after: "## Configuration", in: try Self.text("README.md"))
            let fromCatalog = try Self.firstColumn(after: "## The tracker", in: try Self.text("Sources/MemdirKit/MemdirKit.docc/Configuration.md"))
            let fromManPage = MemdirKit.Environment.variables.map(\.name).filter { $0.hasPrefix("MEM_") }
            #expect(fromReadme.count >= 12 && fromReadme.allSatisfy { $0.hasPrefix("MEM_") }, "\(fromReadme)")
            #expect(fromReadme == fromManPage, "README \(fromReadme) vs man page \(fromManPage)")
            #expect(fromCatalog == fromManPage, "catalog \(fromCatalog) vs man page \(fromManPage)")
            // Defaults agree too (unset in the tables is no default in the declarations).
            func defaults(_ file: String) throws -> [String] {
                try Self.text(file).split(separator: "\n").filter { $0.hasPrefix("| `MEM_") }
                    .map { $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "") }[1] }
            }
            let declared = MemdirKit.Environment.variables.filter { $0.name.hasPrefix("MEM_") }.map { $0.defaultValue ?? "unset" }
            #expect(try defaults("README.md") == declared, "README's defaults vs declared \(declared)")
            #expect(try defaults("Sources/MemdirKit/MemdirKit.docc/Configuration.md") == declared, "the catalog's defaults vs declared \(declared)")
            // memdir's own variables are in the catalog's second table.
            let memdirOwn = try Self.firstColumn(after: "## memdir", in: try Self.text("Sources/MemdirKit/MemdirKit.docc/Configuration.md"))
            for variable in MemdirKit.Environment.variables.map(\.name) where !variable.hasPrefix("MEM_") {
                #expect(memdirOwn.contains(variable), "\(variable) is not in the catalog's memdir table \(memdirOwn)")
            }
        }

        @Test("the catalog has a section for every subcommand and names every option its --help lists")
        func catalogCoversTheCommandLine() throws {
            let names = try Self.articles().filter { $0 != "MemdirKit" }
            let catalog = try names.map { try Self.text("Sources/MemdirKit/MemdirKit.docc/\($0).md") }.joined(separator: "\n")
            let headings = Set(catalog.split(separator: "\n").filter { $0.hasPrefix("## ") }.map { String($0.dropFirst(3).prefix { $0 != " " }) })
            let subcommands = try helpSubcommands()
            #expect(subcommands.count >= 13, "\(subcommands)")
            var options = 0
            for name in subcommands {
                #expect(headings.contains(name), "no section for \(name) (a heading `## \(name)`)")
                let help = try memdir([name, "--help"])
                #expect(help.status == 0)
                for option in helpOptions(help.stdoutText) {
                    options += 1
                    // The option as a word of its own: `--by` is not found in `--by-kind`.
                    let pattern = "(?<![-\\w])" + NSRegularExpression.escapedPattern(for: option) + "(?![-\\w])"
                    let found = try NSRegularExpression(pattern: pattern).firstMatch(in: catalog, range: NSRange(catalog.startIndex..., in: catalog))
                    #expect(found != nil, "\(name) \(option) is not in the catalog")
                }
            }
            #expect(options >= 40, "the check saw the options: \(options)")
        }

        @Test("the catalog's exit-status table lists exactly the statuses the man page is generated from")
        func exitStatusTableAgrees() throws {
            let documented = try Self.firstColumn(after: "## Exit statuses", in: try Self.text("Sources/MemdirKit/MemdirKit.docc/Commands.md"))
            let numbers = documented.compactMap(Int.init)
            #expect(numbers.count >= 16 && documented.count == numbers.count + 1, "one row for the program's own status: \(documented)")
            let declared = MemdirKit.ManPage.exitStatuses.compactMap { Int($0.status) }
            #expect(numbers.sorted() == declared.sorted(), "catalog \(numbers.sorted()) vs man page \(declared.sorted())")
        }
    }
}
