// Starting step processes cheaply. Node starts a child with fork() + exec(), and fork() copies
// the parent's page tables: from a velora holding 20,000 targets (200-300 MB) one start costs
// 5-40 ms of the main thread, more than a trivial step itself. So velora starts its steps through
// a small helper process (perl, a few MB, part of every Debian and macOS system) that forks
// them instead: the cost stays a fraction of a millisecond whatever velora's size.
// Without perl (or with VELORA_SPAWNER=node) steps are started by Node directly, as before.
//
// What a step sees is the same either way: its own session and process group (setsid), stdin
// from /dev/null, stdout and stderr appended to its log, exactly the given argv (no shell) and
// environment, the given cwd. velora signals its process group itself, by pid. Through the
// helper (on Linux), moreover, no process of a step outlives it, wherever it went: see HELPER.
import type { ChildProcess } from 'node:child_process'
import { childProcess } from '../builtins.js'

export type ProcessExit = { code: number | null; signal: NodeJS.Signals | null; error?: string }
export type Launched = { pid: number; exited: Promise<ProcessExit> } | { error: string }

export interface LaunchJob {
  argv: string[]
  env: Record<string, string>
  cwd: string
  logFile: string
  /** The log, open for appending (Node's own spawn writes the child's output to it). */
  logFd: number
}

const notFound = (argv0: string, code: string | undefined, message: string) =>
  code === 'ENOENT' ? `command not found: ${argv0}` : `cannot start ${argv0}: ${message}`

/** Node's spawn: fork + exec from this process. */
export function launchDirect(job: LaunchJob): Promise<Launched> {
  return new Promise((resolve) => {
    let child: ChildProcess
    try {
      child = childProcess().spawn(job.argv[0], job.argv.slice(1), { cwd: job.cwd, env: job.env, detached: true, stdio: ['ignore', job.logFd, job.logFd] })
    } catch (e) {
      resolve({ error: notFound(job.argv[0], (e as NodeJS.ErrnoException).code, (e as Error).message) })
      return
    }
    child.once('error', (e) => resolve({ error: notFound(job.argv[0], (e as NodeJS.ErrnoException).code, e.message) }))
    child.once('spawn', () => resolve({ pid: child.pid!, exited: new Promise((done) => child.once('close', (code, signal) => done({ code, signal }))) }))
  })
}

// The helper. Requests on stdin, each "<length>:" then NUL-separated fields: id, cwd, log file,
// argc, argv..., then NAME=value environment entries. Replies on stdout, one line each:
// "P id pid" (started), "E id errno message" (could not start), "X id code|- signal|-" (ended),
// "L id" (its keeper died: the step is lost). It ignores the terminal's signals (velora decides
// what to stop) and exits when stdin closes.
//
// Every descendant of a step ends with the step. A step runs in its own process group, which
// velora signals; what leaves the group (setsid, a daemon's double fork) and no longer carries
// the step's environment (VELORA_OUT_DIR, see taggedPids in local.ts) would otherwise escape:
// when its parent dies it is re-parented to pid 1, which may not even reap it (a container's
// init that is not one). So each step gets a *keeper*: a fork of the helper that makes itself a
// child subreaper (Linux prctl(PR_SET_CHILD_SUBREAPER)) and then starts the step. A keeper has
// exactly one child of its own, the step's main process, so every other process the kernel
// re-parents to it is, by construction, a descendant of that step: no bookkeeping, no /proc
// polling while the step runs, and a double fork whose middle process exits at once is caught
// just the same. The keeper reaps adopted orphans as they die (waitpid(-1)), and when the main
// process ends (exit, timeout, Ctrl-C) it SIGKILLs the step's process group and then, round by
// round, every child it still has (killing one re-parents that one's own children to the
// keeper), until waitpid says it has none left (ECHILD): every process of the step is gone and
// reaped. Only then does it report "X", so when velora learns that a step ended, its whole tree
// has ended too. (The step's main process may not outlive its step's processes, by design:
// a step that wants a server must run it in the foreground of something that waits for it.)
// One keeper per running step (a small fork of this small process) is the price of knowing,
// without guessing, whose orphan is whose when several steps run at once.
//
// The helper is a subreaper too, for the processes of a step whose keeper was killed: those
// are re-parented to the helper, which SIGKILLs and reaps every child that is not a keeper.
// Elsewhere than Linux there is no subreaper: steps run as before (the keeper finds no
// children). With VELORA_SPAWNER=node (or no perl) steps are Node's own children, and Node
// cannot become a subreaper without a native addon: there, velora kills the process group and
// the processes carrying the step's VELORA_OUT_DIR, and a process that left the group, scrubbed
// its environment and lost its parent is out of reach (as it was before).
const HELPER = String.raw`
use strict; use warnings; use POSIX (); use Fcntl; use Config;
my @signame = split ' ', $Config{sig_name};
$SIG{$_} = 'IGNORE' for qw(INT TERM HUP PIPE QUIT);
# prctl(PR_SET_CHILD_SUBREAPER = 36, 1). The syscall numbers are part of each Linux ABI (they never
# change), so known architectures skip loading syscall.ph (30 ms); others ask it.
sub subreaper {
  return 0 unless $^O eq 'linux';
  my $a = $Config{archname};
  my $nr = $a =~ /^x86_64-linux(?!-gnux32)/ ? 157 : $a =~ /^(?:aarch64|riscv64|loongarch64)-/ ? 167
    : $a =~ /^(?:i[3-6]86|arm|s390)/ ? 172 : $a =~ /^(?:powerpc|ppc)/ ? 171
    : eval { no warnings; no strict; require 'syscall.ph'; &SYS_prctl() };
  return defined $nr && syscall($nr, 36, 1, 0, 0, 0) == 0 ? 1 : 0;
}
# this process's children (live or not yet reaped)
sub children {
  if (open(my $f, '<', "/proc/$$/task/$$/children")) { local $/; my $t = <$f>; return split ' ', $t // '' }
  opendir(my $d, '/proc') or return ();
  my @k;
  for my $p (readdir $d) {
    next unless $p =~ /^\d+$/;
    open(my $s, '<', "/proc/$p/stat") or next;
    my $t = <$s>; next unless defined $t;
    push @k, $p if substr($t, rindex($t, ')') + 2) =~ /^\S+ (\d+)/ && $1 == $$;
  }
  return @k;
}
subreaper();
pipe(my $wr, my $ww) or die "pipe: $!";
fcntl($_, F_SETFL, O_NONBLOCK) for $wr, $ww;
$SIG{CHLD} = sub { syswrite($ww, 'x') };
binmode STDIN; binmode STDOUT;
my %keeper; my $lost = 0;
sub say_ { my $l = shift; syswrite(STDOUT, "$l\n") }
sub reap {
  while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
    my $st = $?; my $id = delete $keeper{$pid};
    # not a keeper: an orphan adopted from a lost keeper, reaped and nothing more
    next unless defined $id;
    # a keeper exits 0 once it has reported its step; otherwise it was killed
    if ($st != 0) { say_("L $id"); $lost = 1 }
  }
}
# the processes of steps whose keeper died were re-parented here: end them
sub sweep_orphans {
  for (1 .. 400) {
    my @o = grep { !exists $keeper{$_} } children();
    last unless @o;
    kill 'KILL', @o;
    select(undef, undef, undef, 0.005);
    reap();
  }
  $lost = 0;
}
# the step has ended: SIGKILL its group, then every child left (orphans of the step), until none is
sub sweep {
  my $pgid = shift;
  kill '-KILL', $pgid;
  my $until = time + 5;
  while (1) {
    my $w; 1 while ($w = waitpid(-1, POSIX::WNOHANG())) > 0;
    return if $w < 0 || time > $until;
    kill 'KILL', children();
    select(undef, undef, undef, 0.005);
  }
}
sub keeper {
  my ($id, $cwd, $log, $argc, @rest) = @_;
  $SIG{CHLD} = 'DEFAULT';
  close $wr; close $ww;
  open(STDIN, '<', '/dev/null');
  subreaper();
  my @argv = splice(@rest, 0, $argc);
  pipe(my $er, my $ew) or do { say_("E $id 0 pipe: $!"); POSIX::_exit(0) };
  my $pid = fork();
  if (!defined $pid) { my $e = $! + 0; say_("E $id $e fork: $!"); POSIX::_exit(0) }
  if ($pid == 0) {
    close $er;
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE QUIT CHLD);
    my $fail = sub { my $e = $! + 0; syswrite($ew, "$e $_[0]: $!"); POSIX::_exit(127) };
    POSIX::setsid();
    chdir($cwd) or $fail->("cannot enter $cwd");
    open(STDIN, '<', '/dev/null') or $fail->('cannot open /dev/null');
    open(STDOUT, '>>', $log) or $fail->("cannot open $log");
    open(STDERR, '>&', \*STDOUT) or $fail->('cannot redirect stderr');
    %ENV = ();
    for (@rest) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v if defined $v }
    { no warnings; exec { $argv[0] } @argv; }
    $fail->("exec $argv[0]");
  }
  close $ew;
  my $msg = ''; while (1) { my $n = sysread($er, my $c, 4096); last unless $n; $msg .= $c }
  close $er;
  if ($msg ne '') { waitpid($pid, 0); $msg =~ s/\n/ /g; say_("E $id $msg"); POSIX::_exit(0) }
  say_("P $id $pid");
  # while the step runs, reap the orphans it leaves as they die
  my $st = 0;
  while (1) { my $w = waitpid(-1, 0); if ($w == $pid) { $st = $?; last } last if $w < 0 }
  sweep($pid);
  if ($st & 127) { say_("X $id - SIG" . ($signame[$st & 127] // 'KILL')) } else { say_("X $id " . ($st >> 8) . " -") }
  POSIX::_exit(0);
}
sub launch {
  my $kpid = fork();
  if (!defined $kpid) { my $e = $! + 0; return say_("E $_[0] $e fork: $!") }
  if ($kpid == 0) { keeper(@_) }
  $keeper{$kpid} = $_[0];
}
my $buf = '';
while (1) {
  reap();
  sweep_orphans() if $lost;
  my $rin = ''; vec($rin, fileno(STDIN), 1) = 1; vec($rin, fileno($wr), 1) = 1;
  my $n = select(my $rout = $rin, undef, undef, 1);
  next if $n <= 0;
  if (vec($rout, fileno($wr), 1)) { sysread($wr, my $x, 512) }
  next unless vec($rout, fileno(STDIN), 1);
  my $r = sysread(STDIN, $buf, 1 << 16, length $buf);
  last unless $r;
  while ($buf =~ /^(\d+):/) {
    my $len = $1; my $at = length($len) + 1;
    last if length($buf) < $at + $len;
    my $req = substr($buf, $at, $len); $buf = substr($buf, $at + $len);
    launch(split /\0/, $req, -1);
  }
}
`

/** Steps started through the perl helper; one per executor, started on first use. */
export class Spawner {
  private helper?: ChildProcess
  private dead = false
  private nextId = 1
  private starting = new Map<number, (l: Launched | { errno: number; message: string } | 'fallback') => void>()
  private running = new Map<number, (e: ProcessExit) => void>()
  private buf = ''

  /** Is the helper usable (or not yet tried)? */
  get available(): boolean {
    return !this.dead && process.env.VELORA_SPAWNER !== 'node' && !process.env.VELORA_SPAWNER?.startsWith('node')
  }

  async launch(job: LaunchJob): Promise<Launched> {
    if (!this.available || job.argv.some((a) => a.includes('\0')) || Object.entries(job.env).some(([k, v]) => k.includes('=') || k.includes('\0') || String(v).includes('\0')))
      return launchDirect(job)
    const helper = this.start()
    if (!helper) return launchDirect(job)
    const id = this.nextId++
    const env = Object.entries(job.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`)
    const payload = Buffer.from([String(id), job.cwd, job.logFile, String(job.argv.length), ...job.argv, ...env].join('\0'))
    const got = await new Promise<Launched | { errno: number; message: string } | 'fallback'>((resolve) => {
      this.starting.set(id, resolve)
      this.ref()
      helper.stdin!.write(Buffer.concat([Buffer.from(`${payload.length}:`), payload]))
    })
    if (got === 'fallback') return launchDirect(job)
    if ('errno' in got) return { error: got.errno === 2 && got.message.startsWith('exec ') ? `command not found: ${job.argv[0]}` : `cannot start ${job.argv[0]}: ${got.message}` }
    return got
  }

  private start(): ChildProcess | undefined {
    if (this.helper) return this.helper
    let h: ChildProcess
    try {
      h = childProcess().spawn('perl', ['-e', HELPER], { stdio: ['pipe', 'pipe', 'ignore'] })
    } catch {
      this.dead = true
      return undefined
    }
    this.helper = h
    h.on('error', () => this.lost('the process starter (perl) could not be run'))
    h.on('exit', () => this.lost('the process starter (perl) stopped'))
    h.stdin!.on('error', () => {})
    h.stdout!.setEncoding('utf8')
    h.stdout!.on('data', (chunk: string) => {
      this.buf += chunk
      let nl: number
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl)
        this.buf = this.buf.slice(nl + 1)
        this.reply(line)
      }
    })
    this.unref()
    return h
  }

  private reply(line: string) {
    const [kind, idText, a, ...rest] = line.split(' ')
    const id = Number(idText)
    if (kind === 'P') {
      const pid = Number(a)
      const exited = new Promise<ProcessExit>((done) => this.running.set(id, done))
      this.starting.get(id)?.({ pid, exited })
      this.starting.delete(id)
    } else if (kind === 'E') {
      this.starting.get(id)?.({ errno: Number(a), message: rest.join(' ') })
      this.starting.delete(id)
    } else if (kind === 'X') {
      const code = a === '-' ? null : Number(a)
      const signal = rest[0] === '-' || rest[0] === undefined ? null : (rest[0] as NodeJS.Signals)
      this.running.get(id)?.({ code, signal })
      this.running.delete(id)
    } else if (kind === 'L') {
      // the step's keeper was killed (by hand, the OOM killer): the helper ends what it left
      const why = "the step's keeper process (perl) was killed"
      this.starting.get(id)?.({ errno: 0, message: why })
      this.starting.delete(id)
      this.running.get(id)?.({ code: null, signal: null, error: `${why}; the step's exit status is unknown` })
      this.running.delete(id)
    }
    if (this.starting.size === 0 && this.running.size === 0) this.unref()
  }

  /** The helper is gone: requests not yet answered are started directly; running steps are reported lost. */
  private lost(why: string) {
    if (this.dead) return
    this.dead = true
    for (const resolve of this.starting.values()) resolve('fallback')
    this.starting.clear()
    for (const done of this.running.values()) done({ code: null, signal: null, error: `${why}; the step's exit status is unknown` })
    this.running.clear()
  }

  // the helper keeps velora alive only while a step it started runs
  private ref() {
    this.helper?.ref()
    ;(this.helper?.stdout as unknown as { ref?: () => void })?.ref?.()
  }

  private unref() {
    this.helper?.unref()
    ;(this.helper?.stdout as unknown as { unref?: () => void })?.unref?.()
    ;(this.helper?.stdin as unknown as { unref?: () => void })?.unref?.()
  }

  /** Let the helper go (it exits when its stdin closes). */
  close(): void {
    this.helper?.stdin?.end()
    this.unref()
  }
}
