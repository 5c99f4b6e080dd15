package dev.oxbow.streams;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The real oxbow binary ($OXBOW_BIN, else ../../target/debug/oxbow) on 127.0.0.1, an ephemeral
 * port and {@code <dir>/data}; {@link #kill9AndRestart()} keeps the port and the data. Stderr
 * goes to {@code <dir>/oxbow.stderr} (appended across restarts); failures show its tail.
 */
final class OxbowBroker implements AutoCloseable {
  private static final Pattern READY = Pattern.compile("^oxbow ready .*PLAINTEXT://([^ ]+):(\\d+)");

  private final Path dir;
  private final List<String> overrides;
  private Process process;
  private int port;
  String bootstrap;

  OxbowBroker(Path dir, String... overrides) throws Exception {
    this.dir = dir;
    this.overrides = List.of(overrides);
    start();
  }

  private void start() throws Exception {
    String bin = System.getenv("OXBOW_BIN");
    if (bin == null || bin.isEmpty()) bin = new File("../../target/debug/oxbow").getAbsolutePath();
    if (!new File(bin).canExecute()) {
      throw new IllegalStateException("oxbow binary missing at " + bin + ": run `cargo build -p oxbow-broker` or set OXBOW_BIN");
    }
    List<String> cmd = new ArrayList<>(List.of(bin, "serve",
        "--override", "listeners=PLAINTEXT://127.0.0.1:" + port,
        "--override", "log.dirs=" + dir.resolve("data"),
        "--override", "group.initial.rebalance.delay.ms=0"));
    for (String o : overrides) {
      cmd.add("--override");
      cmd.add(o);
    }
    process = new ProcessBuilder(cmd)
        .redirectError(ProcessBuilder.Redirect.appendTo(dir.resolve("oxbow.stderr").toFile()))
        .redirectInput(new File("/dev/null"))
        .start();
    BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    CompletableFuture<String> first = new CompletableFuture<>();
    Thread drain = new Thread(() -> {
      try {
        first.complete(out.readLine());
        while (out.readLine() != null) { } // keep draining: the broker never blocks on stdout
      } catch (IOException e) {
        first.complete(null);
      }
    });
    drain.setDaemon(true);
    drain.start();
    String line;
    try {
      line = first.get(30, TimeUnit.SECONDS);
    } catch (java.util.concurrent.TimeoutException e) {
      line = null;
    }
    Matcher m = READY.matcher(line == null ? "" : line);
    if (!m.find()) {
      process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      throw new IllegalStateException("broker not ready within 30 s (stdout: " + line + "); stderr tail:\n" + stderrTail());
    }
    port = Integer.parseInt(m.group(2));
    bootstrap = m.group(1) + ":" + port;
  }

  /** SIGKILL, then start again on the same port and data dir. */
  void kill9AndRestart() throws Exception {
    process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
    start();
  }

  String stderrTail() {
    try {
      List<String> all = Files.readAllLines(dir.resolve("oxbow.stderr"), StandardCharsets.UTF_8);
      return String.join("\n", all.subList(Math.max(0, all.size() - 40), all.size()));
    } catch (IOException e) {
      return "(no stderr: " + e + ")";
    }
  }

  @Override
  public void close() throws InterruptedException {
    process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
  }
}
