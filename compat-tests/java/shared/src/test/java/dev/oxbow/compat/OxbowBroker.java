package dev.oxbow.compat;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The real oxbow binary ($OXBOW_BIN, else target/debug/oxbow of the repository) on
 * an ephemeral port and a temporary data dir. A missing binary, a broker that prints no ready
 * line within 30 s or one that does not stop within 30 s of SIGTERM fails the test loudly, with
 * the tail of the broker's stderr.
 */
final class OxbowBroker implements AutoCloseable {
  private static final Pattern READY = Pattern.compile("^oxbow ready .*PLAINTEXT://([^ ]+):(\\d+)");

  final Path dir;
  final List<String> overrides;
  Process process;
  String bootstrap;
  int port;

  OxbowBroker(String... overrides) throws Exception {
    this.dir = Files.createTempDirectory("oxbow-java");
    this.overrides = List.of(overrides);
    start(0);
  }

  static String binary() {
    String bin = System.getenv("OXBOW_BIN");
    if (bin == null || bin.isEmpty()) bin = repoRoot().resolve("target/debug/oxbow").toString();
    if (!new File(bin).canExecute()) {
      throw new IllegalStateException(
          "oxbow binary missing at " + bin + ": run `cargo build -p oxbow-broker` or set OXBOW_BIN");
    }
    return bin;
  }

  /** The repository root: the nearest directory above the working directory with Cargo.toml and compat-tests/. */
  static Path repoRoot() {
    Path start = Path.of("").toAbsolutePath();
    for (Path p = start; p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("Cargo.toml")) && Files.isDirectory(p.resolve("compat-tests"))) return p;
    }
    throw new IllegalStateException("no repository root (Cargo.toml + compat-tests/) above " + start + ": set OXBOW_BIN");
  }

  Path stderrFile() {
    return dir.resolve("oxbow.stderr");
  }

  String stderrTail(int lines) {
    try {
      List<String> all = Files.readAllLines(stderrFile(), StandardCharsets.UTF_8);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (IOException e) {
      return "(no stderr: " + e + ")";
    }
  }

  private void start(int listenPort) throws Exception {
    List<String> cmd = new ArrayList<>(List.of(binary(), "serve",
        "--override", "listeners=PLAINTEXT://127.0.0.1:" + listenPort,
        "--override", "log.dirs=" + dir.resolve("data"),
        "--override", "group.initial.rebalance.delay.ms=0"));
    for (String o : overrides) {
      cmd.add("--override");
      cmd.add(o);
    }
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.redirectError(ProcessBuilder.Redirect.appendTo(stderrFile().toFile()));
    pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    process = pb.start();
    BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    CompletableFuture<String> first = CompletableFuture.supplyAsync(() -> {
      try {
        return out.readLine();
      } catch (IOException e) {
        return null;
      }
    });
    String line;
    try {
      line = first.get(30, TimeUnit.SECONDS);
    } catch (TimeoutException e) {
      process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      throw new IllegalStateException("broker printed no ready line within 30 s; stderr tail:\n" + stderrTail(40));
    }
    Matcher m = READY.matcher(line == null ? "" : line);
    if (!m.find()) {
      process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      throw new IllegalStateException("broker not ready (stdout: " + line + "); stderr tail:\n" + stderrTail(40));
    }
    // Keep draining stdout so the broker never blocks on a full pipe.
    Thread drain = new Thread(() -> {
      try {
        while (out.readLine() != null) {
          // discard
        }
      } catch (IOException ignored) {
        // the broker went away
      }
    });
    drain.setDaemon(true);
    drain.start();
    port = Integer.parseInt(m.group(2));
    bootstrap = m.group(1) + ":" + port;
  }

  /** SIGTERM, wait for a clean exit, then start again on the same data dir and port. */
  void restart() throws Exception {
    process.destroy(); // SIGTERM
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new IllegalStateException("broker did not stop within 30 s of SIGTERM; stderr tail:\n" + stderrTail(40));
    }
    if (process.exitValue() != 0) {
      throw new IllegalStateException("broker exited with " + process.exitValue() + " after SIGTERM; stderr tail:\n" + stderrTail(40));
    }
    start(port);
  }

  @Override
  public void close() {
    process.destroyForcibly();
    try {
      process.waitFor(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // best effort
    }
  }
}
