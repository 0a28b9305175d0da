// Starting step processes cheaply. Node starts a child with fork() + exec(), and fork() copies
// the parent's page tables: from a velora holding 20,000 targets (200-300 MB) one start costs
// 5-40 ms of the main thread, more than a trivial step itself. So velora starts its steps through
// a small helper process (perl, a few MB, part of every Debian and macOS system) that forks
// them instead: the cost stays a fraction of a millisecond whatever velora's size.
// Without perl (or with VELORA_SPAWNER=node) steps are started by Node directly, as before.
//
// What a step sees is the same either way: its own session and process group (setsid), stdin
// from /dev/null, stdout and stderr appended to its log, exactly the given argv (no shell) and
// environment, the given cwd. velora signals its process group itself, by pid.
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
// "P id pid" (started), "E id errno message" (could not start), "X id code|- signal|-" (ended).
// It ignores the terminal's signals (velora decides what to stop) and exits when stdin closes.
const HELPER = String.raw`
use strict; use warnings; use POSIX (); use Fcntl; use Config;
my @signame = split ' ', $Config{sig_name};
$SIG{$_} = 'IGNORE' for qw(INT TERM HUP PIPE QUIT);
pipe(my $wr, my $ww) or die "pipe: $!";
fcntl($_, F_SETFL, O_NONBLOCK) for $wr, $ww;
$SIG{CHLD} = sub { syswrite($ww, 'x') };
binmode STDIN; binmode STDOUT;
my %job;
sub say_ { my $l = shift; syswrite(STDOUT, "$l\n") }
sub reap {
  while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
    my $st = $?; my $id = delete $job{$pid}; next unless defined $id;
    if ($st & 127) { say_("X $id - SIG" . ($signame[$st & 127] // 'KILL')) } else { say_("X $id " . ($st >> 8) . " -") }
  }
}
sub launch {
  my ($id, $cwd, $log, $argc, @rest) = @_;
  my @argv = splice(@rest, 0, $argc);
  pipe(my $er, my $ew) or return say_("E $id 0 pipe: $!");
  my $pid = fork();
  if (!defined $pid) { my $e = $! + 0; return say_("E $id $e fork: $!") }
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
  if ($msg ne '') { waitpid($pid, 0); $msg =~ s/\n/ /g; return say_("E $id $msg") }
  $job{$pid} = $id;
  say_("P $id $pid");
}
my $buf = '';
while (1) {
  reap();
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
