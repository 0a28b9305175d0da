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
// One keeper per running step is the price of knowing, without guessing, whose orphan is whose
// when several steps run at once. Keepers are reused: once a keeper has reported "X" it has no
// child left, and it tells the helper it is free (a line on a pipe); the helper hands the next
// step to a free keeper and forks a new one only when none is (so there are at most as many as
// steps ever ran at once). A fork and an exit per step cost more than the step's own start on
// some VMs (1-2 ms each for perl on this project's 2-core VM, where starting `sh` costs 2-3 ms).
// A keeper whose step left a process it could not kill within 5 s is not reused: it exits, and
// the helper (the next subreaper up) ends what it left.
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
# keepers: pid => [its request pipe, the id of the step it runs (undef: idle)]
my %keeper; my @idle; my $lost = 0;
# keepers say "pid\n" here when they are free again (one short write: atomic)
pipe(my $dr, my $dw) or die "pipe: $!";
fcntl($dr, F_SETFL, O_NONBLOCK);
sub say_ { my $l = shift; syswrite(STDOUT, "$l\n") }
sub write_all {
  my ($fh, $data) = @_;
  while (length $data) {
    my $n = syswrite($fh, $data);
    if (!defined $n) { next if $!{EINTR}; return 0 }
    substr($data, 0, $n) = '';
  }
  return 1;
}
# the next "<length>:<payload>" request from a handle (undef at its end)
sub next_request {
  my ($fh, $bref) = @_;
  while (1) {
    if ($$bref =~ /^(\d+):/) {
      my $len = $1; my $at = length($len) + 1;
      if (length($$bref) >= $at + $len) { my $r = substr($$bref, $at, $len); substr($$bref, 0, $at + $len) = ''; return $r }
    }
    my $n = sysread($fh, $$bref, 1 << 16, length $$bref);
    next if !defined $n && $!{EINTR};
    return undef unless $n;
  }
}
sub reap {
  while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
    # not a keeper: an orphan adopted from a lost keeper, reaped and nothing more
    my $k = delete $keeper{$pid} or next;
    close $k->[0];
    # a keeper ends only when the helper does, or, killed, with its step: that step is lost
    if (defined $k->[1]) { say_("L $k->[1]"); $lost = 1 }
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
# the step has ended: SIGKILL its group, then every child left (orphans of the step), until none
# is; true when none is left (false after 5 s of processes that would not die)
sub sweep {
  my $pgid = shift;
  kill '-KILL', $pgid;
  my $until = time + 5;
  while (1) {
    my $w; 1 while ($w = waitpid(-1, POSIX::WNOHANG())) > 0;
    return 1 if $w < 0;
    return 0 if time > $until;
    kill 'KILL', children();
    select(undef, undef, undef, 0.005);
  }
}
# the step's environment, set in the keeper before it forks (only what differs from the last
# step's): the child between fork and exec touches as little memory as it can, for every page it
# writes is copied (rebuilding %ENV there cost more than the fork on a slow VM)
my %env_now;
sub set_env {
  my %want;
  for (@_) { my $i = index($_, '='); $want{substr($_, 0, $i)} = substr($_, $i + 1) if $i > 0 }
  for my $k (keys %ENV) { delete $ENV{$k} unless exists $want{$k} }
  while (my ($k, $v) = each %want) { $ENV{$k} = $v unless exists $env_now{$k} && $env_now{$k} eq $v }
  %env_now = %want;
}
# run one step, as a keeper: true when it left nothing behind
sub run_step {
  my ($id, $cwd, $log, $argc, @rest) = @_;
  my @argv = splice(@rest, 0, $argc);
  # what the step's process needs, made here: its folder, its log, its environment (its stdin is
  # the keeper's, /dev/null)
  chdir($cwd) or do { my $e = $! + 0; say_("E $id $e cannot enter $cwd: $!"); return 1 };
  open(my $out, '>>', $log) or do { my $e = $! + 0; say_("E $id $e cannot open $log: $!"); return 1 };
  set_env(@rest);
  pipe(my $er, my $ew) or do { say_("E $id 0 pipe: $!"); return 1 };
  my $pid = fork();
  if (!defined $pid) { my $e = $! + 0; say_("E $id $e fork: $!"); return 1 }
  if ($pid == 0) {
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE QUIT);
    POSIX::setsid();
    POSIX::dup2(fileno($out), 1); POSIX::dup2(1, 2);
    { no warnings; exec { $argv[0] } @argv; }
    my $e = $! + 0; syswrite($ew, "$e exec $argv[0]: $!"); POSIX::_exit(127);
  }
  close $ew; close $out;
  my $msg = ''; while (1) { my $n = sysread($er, my $c, 4096); last unless $n; $msg .= $c }
  close $er;
  if ($msg ne '') { waitpid($pid, 0); $msg =~ s/\n/ /g; say_("E $id $msg"); return 1 }
  say_("P $id $pid");
  # while the step runs, reap the orphans it leaves as they die
  my $st = 0;
  while (1) { my $w = waitpid(-1, 0); if ($w == $pid) { $st = $?; last } last if $w < 0 }
  my $clean = sweep($pid);
  if ($st & 127) { say_("X $id - SIG" . ($signame[$st & 127] // 'KILL')) } else { say_("X $id " . ($st >> 8) . " -") }
  return $clean;
}
# a keeper: a subreaper that runs the steps the helper hands it, one at a time, for as long as
# the helper lives (a fork per step costs 1-2 ms on some VMs; a keeper is reused instead)
sub keeper {
  my ($rq, $first) = @_;
  $SIG{CHLD} = 'DEFAULT';
  close $wr; close $ww; close $dr;
  # the other keepers' request pipes: theirs alone, or they would never see the helper end
  close $_->[0] for values %keeper;
  open(STDIN, '<', '/dev/null');
  subreaper();
  my $buf = '';
  my $req = $first;
  while (defined $req) {
    # a step that left a process it could not kill: this keeper is not reused (the helper ends it)
    POSIX::_exit(0) unless run_step(split /\0/, $req, -1);
    syswrite($dw, "$$\n");
    $req = next_request($rq, \$buf);
  }
  POSIX::_exit(0);
}
sub launch {
  my ($req, $id) = @_;
  while (@idle) {
    my $k = pop @idle;
    next unless $keeper{$k} && !defined $keeper{$k}[1];
    $keeper{$k}[1] = $id;
    return if write_all($keeper{$k}[0], length($req) . ':' . $req);
    # its pipe is broken: the keeper is gone (reaped soon); another one runs the step
    $keeper{$k}[1] = undef;
  }
  pipe(my $rq, my $rw) or return say_("E $id 0 pipe: $!");
  my $kpid = fork();
  if (!defined $kpid) { my $e = $! + 0; close $rq; close $rw; return say_("E $id $e fork: $!") }
  if ($kpid == 0) { close $rw; keeper($rq, $req) }
  close $rq;
  $keeper{$kpid} = [$rw, $id];
}
my $buf = '';
while (1) {
  reap();
  sweep_orphans() if $lost;
  my $rin = ''; vec($rin, fileno($_), 1) = 1 for \*STDIN, $wr, $dr;
  my $n = select(my $rout = $rin, undef, undef, 1);
  next if $n <= 0;
  if (vec($rout, fileno($wr), 1)) { sysread($wr, my $x, 512) }
  if (vec($rout, fileno($dr), 1) && sysread($dr, my $free, 4096)) {
    for my $k (split /\n/, $free) { next unless $keeper{$k}; $keeper{$k}[1] = undef; push @idle, $k }
  }
  next unless vec($rout, fileno(STDIN), 1);
  my $r = sysread(STDIN, $buf, 1 << 16, length $buf);
  last unless $r;
  while ($buf =~ /^(\d+):/) {
    my $len = $1; my $at = length($len) + 1;
    last if length($buf) < $at + $len;
    my $req = substr($buf, $at, $len); $buf = substr($buf, $at + $len);
    launch($req, substr($req, 0, index($req, "\0")));
  }
}
# stdin closed: velora is done (or gone). Idle keepers end with their pipes; busy ones after their step.
my @wait = grep { !defined $keeper{$_}[1] } keys %keeper;
close $_->[0] for values %keeper;
waitpid($_, 0) for @wait;
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
