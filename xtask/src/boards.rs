//! Board images: `cargo xtask build --board B`, `cargo xtask run --board B
//! ...`, and the `cargo xtask test` step that boots every board in QEMU.
//!
//! Each board crate (`boards/<name>/`) is a Cargo workspace of its own that
//! builds for one bare-metal target. xtask builds it, writes the request
//! blob with `phi-edge-board`, and boots the image under `qemu-system-*`
//! with the model and the request loaded where the board expects them, or
//! (`--stream`, the virt boards) with the model on a virtio disk and less
//! RAM than the model.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use phi_edge_board::{CacheType, Request};

use crate::cmd::{self, capture, cargo, phi_edge};
use crate::steps::Step;
use crate::{demo, Failure, Result, Workspace};

/// How a board boots under QEMU.
pub struct Board {
    /// `--board` name and directory under `boards/`.
    pub name: &'static str,
    /// The name in test reports (with the emulated CPU where a board boots
    /// on several).
    label: &'static str,
    /// The Rust target it builds for.
    pub target: &'static str,
    /// objcopy for the raw binary.
    objcopy: &'static str,
    /// The raw binary's file name.
    raw: &'static str,
    /// Extra objcopy arguments for the raw binary.
    objcopy_args: &'static [&'static str],
    /// The QEMU command line for a boot.
    qemu: fn(&Boot<'_>) -> Result<Command>,
    /// Cores the board has, and so the most the image uses (`--cores`'s
    /// default).
    pub max_cores: usize,
    /// Whether the CI step also boots it on one core, to compare with the
    /// run on [`Board::max_cores`] (once per board crate).
    smp_check: bool,
    /// Whether it reads the model from a virtio disk ([`Model::Disk`]).
    virtio: bool,
}

/// How the model reaches the board.
#[derive(Clone, Copy)]
enum Model<'a> {
    /// In RAM, where `-device loader` puts this `.phi` file (`-m 1G`).
    Ram(&'a Path),
    /// On a virtio disk: a raw disk image (a whole number of sectors) or
    /// a QEMU drive name such as `blkdebug:rules:disk.img`.
    Disk(&'a Path),
}

/// RAM of a boot with the model in RAM.
const RAM: &str = "1G";
/// RAM of a boot with the model on a virtio disk (`--stream`): less than
/// SmolLM2's 99 MB image.
const STREAM_RAM: &str = "64M";

/// What one boot loads.
pub struct Boot<'a> {
    ws: &'a Workspace,
    elf: &'a Path,
    model: Model<'a>,
    request: &'a Path,
    /// Cores the image runs on.
    cores: usize,
    /// `-m` (the virt boards; raspi4b has 2 GiB).
    ram: &'a str,
}

impl Boot<'_> {
    /// `-semihosting-config` with the defmt frames going to a file beside
    /// the request.
    fn semihosting(&self, c: &mut Command) {
        c.args([
            "-semihosting-config",
            "enable=on,target=native,chardev=defmt",
            "-chardev",
        ])
        .arg(format!(
            "file,id=defmt,path={}",
            self.request.with_extension("defmt").display()
        ));
    }

    /// `-m`, `-device loader` for the request at `req`, and the model:
    /// another loader at `model`, or a read-only virtio disk.
    fn loaders(&self, c: &mut Command, req: u64, model: u64) {
        c.arg("-m").arg(self.ram);
        c.arg("-device").arg(format!(
            "loader,file={},addr={req:#x},force-raw=on",
            self.request.display()
        ));
        match self.model {
            Model::Ram(file) => {
                c.arg("-device").arg(format!(
                    "loader,file={},addr={model:#x},force-raw=on",
                    file.display()
                ));
            }
            Model::Disk(disk) => {
                c.arg("-drive")
                    .arg(format!(
                        "file={},if=none,format=raw,id=model,readonly=on",
                        disk.display()
                    ))
                    .args(["-device", "virtio-blk-device,drive=model"]);
            }
        }
    }
}

/// The boards (riscv64 at VLEN 256; the CI step under qemu-user checks VLEN 128).
pub const BOARDS: [Board; 3] = [
    Board {
        name: "qemu-virt-aarch64",
        label: "qemu-virt-aarch64",
        target: "aarch64-unknown-none",
        objcopy: "aarch64-linux-gnu-objcopy",
        raw: "image.bin",
        objcopy_args: &[],
        qemu: |b| {
            let mut c = Command::new("qemu-system-aarch64");
            c.args(["-M", "virt", "-cpu", "cortex-a72", "-nographic"])
                .arg("-smp")
                .arg(b.cores.to_string());
            b.semihosting(&mut c);
            b.loaders(&mut c, 0x4200_0000, 0x4210_0000);
            c.arg("-kernel").arg(b.elf);
            Ok(c)
        },
        max_cores: 4,
        smp_check: true,
        virtio: true,
    },
    Board {
        name: "qemu-virt-riscv64",
        label: "qemu-virt-riscv64 (VLEN 256)",
        target: "riscv64gc-unknown-none-elf",
        objcopy: "riscv64-linux-gnu-objcopy",
        raw: "image.bin",
        objcopy_args: &[],
        qemu: |b| Ok(riscv_qemu("rv64,v=true,vlen=256", b)),
        max_cores: 4,
        smp_check: true,
        virtio: true,
    },
    Board {
        name: "raspi4",
        label: "raspi4",
        target: "aarch64-unknown-none",
        objcopy: "aarch64-linux-gnu-objcopy",
        raw: "kernel8.img",
        // .bss and the stack are written out as zeros: the firmware's
        // `followkernel` puts the initramfs right after the file.
        objcopy_args: &[
            "--set-section-flags",
            ".bss=alloc,load,contents",
            "--set-section-flags",
            ".stack=alloc,load,contents",
        ],
        qemu: |b| {
            let Model::Ram(model) = b.model else {
                return Err(Failure::new("raspi4 reads the model from its initramfs, not a virtio disk (see boards/raspi4/README.md)")
                    .retry("cargo xtask run --board raspi4 --prompt \"Hello\""));
            };
            // QEMU loads an initrd and fills /chosen only for a raw image.
            let initrd = b.request.with_extension("initrd");
            write_initrd(model, b.request, &initrd)?;
            let mut c = Command::new("qemu-system-aarch64");
            c.args(["-M", "raspi4b", "-display", "none", "-serial", "stdio"]);
            b.semihosting(&mut c);
            // raspi4b always has four cores (`-smp` 4 only): the kernel
            // command line (/chosen/bootargs) tells the image how many to
            // use, as cmdline.txt does on a Pi.
            c.arg("-dtb")
                .arg(pi_dtb(b.ws)?)
                .arg("-initrd")
                .arg(&initrd)
                .arg("-append")
                .arg(format!("maxcpus={}", b.cores))
                .arg("-kernel")
                .arg(b.elf.with_file_name("kernel8.img"));
            Ok(c)
        },
        max_cores: 4,
        smp_check: true,
        virtio: false,
    },
];

/// QEMU riscv virt with the V extension at `vlen` bits.
fn riscv_qemu(cpu: &str, b: &Boot<'_>) -> Command {
    let mut c = Command::new("qemu-system-riscv64");
    c.args(["-M", "virt", "-cpu", cpu])
        .args(["-bios", "none", "-nographic", "-smp"])
        .arg(b.cores.to_string());
    b.semihosting(&mut c);
    b.loaders(&mut c, 0x8200_0000, 0x8210_0000);
    c.arg("-kernel").arg(b.elf);
    c
}

/// The Pi's initramfs: the model, zeros to the next 4 KiB, the request
/// (the board finds the request after the model's own length).
fn write_initrd(model: &Path, request: &Path, out: &Path) -> Result<()> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| Failure::new(format!("{}: {e}", p.display())));
    let mut bytes = read(model)?;
    bytes.resize(bytes.len().div_ceil(4096) * 4096, 0);
    bytes.extend(read(request)?);
    std::fs::write(out, bytes).map_err(|e| Failure::new(format!("{}: {e}", out.display())))
}

/// The Raspberry Pi 4B device tree QEMU's raspi4b needs, from Debian's
/// arm64 kernel package (`broadcom/bcm2711-rpi-4-b.dtb`), fetched once
/// into target/board/.
fn pi_dtb(ws: &Workspace) -> Result<PathBuf> {
    let dtb = board_dir(ws)?.join("bcm2711-rpi-4-b.dtb");
    if dtb.is_file() {
        return Ok(dtb);
    }
    let dir = board_dir(ws)?.join("dtb");
    std::fs::create_dir_all(&dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    let foreign = capture(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    if !foreign.lines().any(|l| l.trim() == "arm64") {
        eprintln!("board: adding the arm64 dpkg architecture to download Debian's arm64 kernel (for its Raspberry Pi device tree)");
        cmd::run(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
        cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
    }
    let deps = capture(Command::new("apt-cache").args(["depends", "linux-image-arm64:arm64"]))?;
    let pkg = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.contains("-arm64"))
        .map(|p| p.trim_end_matches(":arm64").to_string())
        .ok_or_else(|| {
            Failure::new(format!(
                "no versioned kernel in `apt-cache depends linux-image-arm64:arm64`:\n{deps}"
            ))
        })?;
    eprintln!("board: downloading {pkg}:arm64 (Debian) for bcm2711-rpi-4-b.dtb");
    cmd::run(
        Command::new("apt-get")
            .current_dir(&dir)
            .args(["download", &format!("{pkg}:arm64")]),
    )?;
    let deb = std::fs::read_dir(&dir)
        .map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| {
            Failure::new(format!(
                "apt-get download left no .deb in {}",
                dir.display()
            ))
        })?;
    let version = pkg.trim_start_matches("linux-image-");
    let member = format!("./usr/lib/linux-image-{version}/broadcom/bcm2711-rpi-4-b.dtb");
    let script = format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -xO '{member}' > '{}'",
        deb.display(),
        dtb.display()
    );
    cmd::run(Command::new("sh").arg("-c").arg(script))?;
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::metadata(&dtb).map_or(0, |m| m.len()) == 0 {
        let _ = std::fs::remove_file(&dtb);
        return Err(Failure::new(format!(
            "{member} not found in {}",
            deb.display()
        )));
    }
    Ok(dtb)
}

fn board(name: &str) -> Result<&'static Board> {
    BOARDS.iter().find(|b| b.name == name).ok_or_else(|| {
        let names: Vec<&str> = BOARDS.iter().map(|b| b.name).collect();
        Failure::new(format!(
            "unknown board `{name}` (boards: {})",
            names.join(", ")
        ))
    })
}

impl Board {
    fn manifest(&self, ws: &Workspace) -> PathBuf {
        ws.root.join("boards").join(self.name).join("Cargo.toml")
    }

    /// The release ELF: under the board crate's `target/`, or under
    /// `CARGO_TARGET_DIR` (relative to the workspace root) if that is set,
    /// as cargo builds it.
    fn elf(&self, ws: &Workspace) -> PathBuf {
        let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || ws.root.join("boards").join(self.name).join("target"),
            |dir| ws.root.join(dir),
        );
        target_dir
            .join(self.target)
            .join("release")
            .join(format!("phi-edge-{}", self.name))
    }

    /// Builds the ELF and the raw binary; returns the ELF.
    fn build(&self, ws: &Workspace) -> Result<PathBuf> {
        cmd::run(
            cargo()
                .current_dir(&ws.root)
                .arg("build")
                .arg("--release")
                .arg("--manifest-path")
                .arg(self.manifest(ws))
                .args(["--target", self.target]),
        )?;
        let elf = self.elf(ws);
        let raw = elf.with_file_name(self.raw);
        cmd::run(
            Command::new(self.objcopy)
                .args(["-O", "binary"])
                .args(self.objcopy_args)
                .arg(&elf)
                .arg(&raw),
        )?;
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "{}: ELF {} ({} bytes), raw binary {} ({} bytes)",
            self.name,
            elf.display(),
            size(&elf),
            raw.display(),
            size(&raw)
        );
        Ok(elf)
    }
}

/// `cargo xtask build --board B`.
pub fn build(ws: &Workspace, args: &[String]) -> Result<()> {
    let name = match args {
        [flag, name] if flag == "--board" => name,
        _ => {
            return Err(Failure::new("usage: cargo xtask build --board B")
                .retry(format!("cargo xtask build --board {}", BOARDS[0].name)))
        }
    };
    let b = board(name)?;
    b.build(ws)?;
    let image = demo::image(ws)?;
    let info = capture(
        phi_edge(ws)
            .arg("inspect")
            .arg(&image)
            .args(["--ctx", &Request::DEFAULT_N_CTX.to_string()]),
    )?;
    if let Some(arena) = info.lines().find(|l| l.starts_with("arena")) {
        eprintln!(
            "{}: the arena is carved from RAM at boot; for SmolLM2 at n_ctx {}: {}",
            b.name,
            Request::DEFAULT_N_CTX,
            arena.trim_start_matches("arena").trim()
        );
    }
    Ok(())
}

/// Options of `cargo xtask run`.
struct RunArgs {
    board: String,
    /// `--cores N`; the board's every core if absent.
    cores: Option<usize>,
    /// `--icount`: QEMU with `-icount shift=0`, the board reporting
    /// instructions per token.
    icount: bool,
    /// `--stream`: the model on a virtio disk, not in RAM.
    stream: bool,
    /// `--ram SIZE`: QEMU's `-m` ([`RAM`], or [`STREAM_RAM`] with
    /// `--stream`, if absent).
    ram: Option<String>,
    model: Option<PathBuf>,
    prompt: String,
    max_tokens: u32,
    chat: bool,
    temp: f32,
    seed: u64,
    /// `--cache-type f16|q8_0`: the KV cache's element type.
    cache_type: CacheType,
}

impl RunArgs {
    /// The request blob's contents.
    fn request(&self) -> Request<'_> {
        let mut req = Request::new(&self.prompt);
        req.chat = self.chat;
        req.max_tokens = self.max_tokens;
        req.temperature = self.temp;
        req.seed = self.seed;
        req.icount = self.icount;
        req.cache_type = self.cache_type;
        req
    }
}

fn parse_run(args: &[String]) -> Result<RunArgs> {
    let usage = || {
        Failure::new("usage: cargo xtask run --board B [--cores N] [--model M] [--stream] [--ram SIZE] --prompt P [--max-tokens N] [--chat] [--temp T --seed S] [--icount] [--cache-type f16|q8_0]\n  \
             --stream (virt boards): the model on a virtio disk, only its header and manifest in RAM, the weights streamed; -m 64M unless --ram says otherwise.\n  \
             --ram SIZE: QEMU's -m for the virt boards (default 1G, or 64M with --stream).\n  \
             --icount: QEMU with `-icount shift=0` (one guest ns per instruction); the board prints instructions per prefill and decode token.\n  \
             With several cores the count is every core's instructions (QEMU runs them in turn), spin-waits included: use --cores 1.")
            .retry(format!("cargo xtask run --board {} --prompt \"Hello\"", BOARDS[0].name))
    };
    let mut r = RunArgs {
        board: String::new(),
        cores: None,
        icount: false,
        stream: false,
        ram: None,
        model: None,
        prompt: String::new(),
        max_tokens: 64,
        chat: false,
        temp: 0.0,
        seed: Request::DEFAULT_SEED,
        cache_type: CacheType::F16,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(usage);
        match a.as_str() {
            "--board" => r.board = value()?,
            "--cores" => r.cores = Some(value()?.parse().map_err(|_| usage())?),
            "--model" => r.model = Some(PathBuf::from(value()?)),
            "--prompt" => r.prompt = value()?,
            "--max-tokens" => r.max_tokens = value()?.parse().map_err(|_| usage())?,
            "--temp" => r.temp = value()?.parse().map_err(|_| usage())?,
            "--seed" => r.seed = value()?.parse().map_err(|_| usage())?,
            "--chat" => r.chat = true,
            "--icount" => r.icount = true,
            "--stream" => r.stream = true,
            "--ram" => r.ram = Some(value()?),
            "--cache-type" => r.cache_type = CacheType::from_name(&value()?).ok_or_else(usage)?,
            _ => return Err(usage()),
        }
    }
    if r.board.is_empty() || r.prompt.is_empty() {
        return Err(usage());
    }
    Ok(r)
}

/// `cargo xtask run --board B [--cores N] [--icount] ...`: builds, boots in
/// QEMU on `N` cores (default: all the board has), streams the text.
///
/// With `--icount` QEMU runs with `-icount shift=0`, so the guest clock
/// advances one nanosecond per instruction; the request tells the board,
/// whose `stats:` line then gives the instructions per prefill and per
/// decode token, and a last line sums them up. Under icount QEMU runs the
/// vCPUs one at a time (no multi-threaded TCG) and the clock counts the
/// instructions of every core, spin-waits included, so the figure is the
/// work per token only on one core (`--cores 1`).
pub fn run(ws: &Workspace, args: &[String]) -> Result<()> {
    let r = parse_run(args)?;
    let b = board(&r.board)?;
    let cores = r.cores.unwrap_or(b.max_cores);
    if !(1..=b.max_cores).contains(&cores) {
        return Err(Failure::new(format!(
            "--cores {cores}: {} has 1 to {} cores",
            b.name, b.max_cores
        ))
        .retry(format!(
            "cargo xtask run --board {} --cores {} ...",
            b.name, b.max_cores
        )));
    }
    if r.stream && !b.virtio {
        return Err(Failure::new(format!(
            "--stream: {} has no virtio disk (see boards/{}/README.md)",
            b.name, b.name
        ))
        .retry(format!(
            "cargo xtask run --board {} --stream --prompt \"Hello\"",
            BOARDS[0].name
        )));
    }
    let elf = b.build(ws)?;
    let image = model_image(ws, r.model.as_deref())?;
    let request = write_request(ws, b, &r.request())?;
    let disk;
    let (model, ram) = if r.stream {
        disk = disk_image(ws, &image)?;
        (Model::Disk(&disk), r.ram.as_deref().unwrap_or(STREAM_RAM))
    } else {
        (Model::Ram(&image), r.ram.as_deref().unwrap_or(RAM))
    };
    let outcome = boot(
        ws,
        b,
        &elf,
        model,
        ram,
        &request,
        cores,
        r.icount,
        Duration::from_secs(3600),
        true,
    )?;
    if outcome.status != Some(0) {
        return Err(Failure::new(format!(
            "{} exited with {:?}",
            b.name, outcome.status
        )));
    }
    if r.icount {
        let (prefill, decode) = icount(&outcome.lines).ok_or_else(|| {
            Failure::new(format!(
                "{}: no instructions per token on the stats line",
                b.name
            ))
        })?;
        println!(
            "{} icount: prefill {prefill} instructions/token, decode {decode} instructions/token (cores {cores})",
            b.name
        );
    }
    Ok(())
}

/// A `.phi` image for `model` (packed into target/board/ if it is a GGUF),
/// or the demo's SmolLM2 image.
fn model_image(ws: &Workspace, model: Option<&Path>) -> Result<PathBuf> {
    let Some(m) = model else {
        return demo::image(ws);
    };
    let bytes = std::fs::read(m).map_err(|e| Failure::new(format!("{}: {e}", m.display())))?;
    if !bytes.starts_with(b"GGUF") {
        return Ok(m.to_path_buf());
    }
    let out = board_dir(ws)?.join(m.with_extension("phi").file_name().unwrap_or_default());
    cmd::run(phi_edge(ws).arg("pack").arg(m).arg("-o").arg(&out))?;
    Ok(out)
}

/// `image` as a raw disk: the file itself if it is a whole number of
/// 512-byte sectors (a virtio disk's capacity is), else a copy padded with
/// zeros in target/board/ (written again when the image is newer).
fn disk_image(ws: &Workspace, image: &Path) -> Result<PathBuf> {
    let meta =
        |p: &Path| std::fs::metadata(p).map_err(|e| Failure::new(format!("{}: {e}", p.display())));
    let len = meta(image)?.len();
    if len % 512 == 0 {
        return Ok(image.to_path_buf());
    }
    let disk = board_dir(ws)?.join(image.with_extension("disk").file_name().unwrap_or_default());
    let fresh = std::fs::metadata(&disk)
        .ok()
        .filter(|d| d.len() == len.next_multiple_of(512))
        .and_then(|d| Some(d.modified().ok()? >= meta(image).ok()?.modified().ok()?));
    if fresh != Some(true) {
        write_disk(image, &disk, usize::MAX)?;
    }
    Ok(disk)
}

/// Writes the first `len` bytes of `image` (all, if fewer) to `disk`,
/// padded with zeros to a whole sector.
fn write_disk(image: &Path, disk: &Path, len: usize) -> Result<()> {
    let mut bytes =
        std::fs::read(image).map_err(|e| Failure::new(format!("{}: {e}", image.display())))?;
    bytes.truncate(len);
    bytes.resize(bytes.len().next_multiple_of(512), 0);
    std::fs::write(disk, bytes).map_err(|e| Failure::new(format!("{}: {e}", disk.display())))
}

fn board_dir(ws: &Workspace) -> Result<PathBuf> {
    let d = ws.target().join("board");
    std::fs::create_dir_all(&d).map_err(|e| Failure::new(format!("{}: {e}", d.display())))?;
    Ok(d)
}

fn write_request(ws: &Workspace, b: &Board, req: &Request<'_>) -> Result<PathBuf> {
    let mut buf = vec![0u8; 64 + req.prompt.len() + req.system.map_or(0, str::len)];
    let bytes = req
        .encode(&mut buf)
        .map_err(|e| Failure::new(format!("cannot encode the request: {e:?}")))?;
    let cache = match req.cache_type {
        CacheType::F16 => String::new(),
        other => format!("-{}", other.name()),
    };
    let path = board_dir(ws)?.join(format!("{}{cache}-request.bin", b.name));
    std::fs::write(&path, bytes).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// What a boot printed and how it ended.
struct Outcome {
    status: Option<i32>,
    lines: Vec<String>,
}

/// Boots `elf` under QEMU with `ram` (`-m`) on `cores` cores (with
/// `-icount shift=0` when `icount`), echoing the UART when `echo`, killing
/// it after `timeout`.
#[allow(clippy::too_many_arguments)]
fn boot(
    ws: &Workspace,
    b: &Board,
    elf: &Path,
    model: Model<'_>,
    ram: &str,
    request: &Path,
    cores: usize,
    icount: bool,
    timeout: Duration,
    echo: bool,
) -> Result<Outcome> {
    let mut c = (b.qemu)(&Boot {
        ws,
        elf,
        model,
        request,
        cores,
        ram,
    })?;
    if icount {
        c.args(["-icount", "shift=0"]);
    }
    eprintln!("$ {}", cmd::show(&c));
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Failure::new(format!("cannot start QEMU: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut lines = vec![];
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&buf).into_owned();
            if echo {
                print!("{line}");
            }
            lines.push(line.trim_end().to_string());
            buf.clear();
        }
        lines
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| Failure::new(format!("waiting for QEMU: {e}")))?
        {
            break s.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::new(format!(
                "{}: no exit after {} s (killed)",
                b.label,
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let lines = reader.join().unwrap_or_default();
    Ok(Outcome { status, lines })
}

/// The ids on a board's `ids:` line.
fn ids(lines: &[String], key: &str) -> Option<Vec<u32>> {
    let line = lines.iter().find_map(|l| l.strip_prefix(key))?;
    line.split_whitespace().map(|t| t.parse().ok()).collect()
}

/// The value of a board's `logits_crc32: 0x…` line.
fn logits_crc(lines: &[String]) -> Option<u64> {
    let hex = lines
        .iter()
        .find_map(|l| l.strip_prefix("logits_crc32: 0x"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The word after `key` on a board's `stats:` line (up to the next space
/// or `;`), e.g. `stats_field(lines, "perplexity ")`.
fn stats_field<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    let stats = lines.iter().find_map(|l| l.strip_prefix("stats:"))?;
    stats
        .split(key)
        .nth(1)?
        .split([';', ' '])
        .find(|w| !w.is_empty())
}

/// The perplexity on a board's `stats:` line.
fn perplexity(lines: &[String]) -> Option<f64> {
    stats_field(lines, "perplexity ")?.parse().ok()
}

/// The prefill and decode rates on a board's `stats:` line.
fn rates(lines: &[String]) -> Option<String> {
    let (prefill, decode) = (
        stats_field(lines, "prefill ")?,
        stats_field(lines, "decode ")?,
    );
    Some(format!("prefill {prefill} tok/s, decode {decode} tok/s"))
}

/// The core count at the end of a board's `stats:` line (`; cores N`).
fn stats_cores(lines: &[String]) -> Option<usize> {
    stats_field(lines, "; cores ")?.parse().ok()
}

/// The instructions per prefill and per decode token at the end of a
/// board's `stats:` line (`; icount prefill P instructions/token, decode D
/// instructions/token`, runs with `--icount`).
fn icount(lines: &[String]) -> Option<(u64, u64)> {
    let prefill = stats_field(lines, "; icount prefill ")?.parse().ok()?;
    let decode = stats_field(lines, " instructions/token, decode ")?
        .parse()
        .ok()?;
    Some((prefill, decode))
}

/// The prompt every board answers in CI.
const CI_PROMPT: &str = "What is the capital of France?";
/// Tokens every board generates in CI.
const CI_TOKENS: u32 = 16;
/// How far a board's perplexity may be from the host's, relative: the
/// logits are the same to the bit (see `logits_crc32`) and the core's
/// generator computes it the same way on both, so only the four decimals
/// of the `stats:` line round it.
const PERPLEXITY_REL_TOL: f64 = 1e-4;
/// Bytes of a prompt with more tokens than the CI context (512) holds
/// (one token per "word ").
const CONTEXT_BUSTER_BYTES: usize = 5 << 10;

/// The `cargo xtask test` step: every board boots with SmolLM2 and the CI
/// prompt (chat, greedy, 16 tokens) on all its cores, and once more on one
/// core with a Q8_0 KV cache (once per board crate), and prints the host's token ids, the
/// CRC-32 of the host's logits (bit-identical logits) and a perplexity
/// near the host's each time. The one-core run of a virt board is a
/// streamed one: the model on a virtio disk, in a 64 MiB guest
/// ([`STREAM_RAM`]). A model with one flipped tensor byte makes every
/// board print an error and exit non-zero; a virt board does the same,
/// with exit status 1, for an image cut short on its disk and for a disk
/// whose reads fail in the middle of the image. The first board also gets
/// a prompt too long for its context, which must be an error too.
pub fn check() -> Step {
    Step {
        name: "board images under QEMU",
        required: false,
        retry: "cargo xtask run --board qemu-virt-aarch64 --chat --temp 0 --max-tokens 16 --prompt \"What is the capital of France?\"",
        run: Box::new(|ws| {
            let model = demo::image(ws)?;
            let dir = board_dir(ws)?;
            // The host's answer with each KV cache type: ids, logits CRC,
            // perplexity.
            let host = |cache: CacheType| -> Result<HostAnswer> {
                let name = cache.name();
                let host_ids = dir.join(format!("host-ids-{name}.json"));
                cmd::run(phi_edge(ws).arg("run").arg("--model").arg(&model).args(["--chat", "--prompt", CI_PROMPT, "--temp", "0", "--max-tokens", &CI_TOKENS.to_string(), "--ctx", &Request::DEFAULT_N_CTX.to_string(), "--cache-type", name, "--ids-out"]).arg(&host_ids))?;
                let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&host_ids).map_err(|e| Failure::new(format!("{}: {e}", host_ids.display())))?)
                    .map_err(|e| Failure::new(format!("{}: {e}", host_ids.display())))?;
                let list = |k: &str| -> Vec<u32> { json.get(k).and_then(|v| v.as_array()).map(|a| a.iter().filter_map(|x| x.as_u64().map(|x| x as u32)).collect()).unwrap_or_default() };
                Ok(HostAnswer {
                    prompt: list("prompt"),
                    ids: list("generated"),
                    ppl: json.get("perplexity").and_then(|v| v.as_f64()).ok_or_else(|| Failure::new(format!("{}: no perplexity", host_ids.display())))?,
                    crc: json.get("logits_crc32").and_then(|v| v.as_u64()).ok_or_else(|| Failure::new(format!("{}: no logits_crc32", host_ids.display())))?,
                })
            };
            let answers = [host(CacheType::F16)?, host(CacheType::Q8_0)?];
            let corrupt = dir.join("corrupt.phi");
            flip_tensor_byte(&model, &corrupt)?;
            let disk = disk_image(ws, &model)?;
            let faults = disk_faults(&dir, &model, &disk)?;
            for (i, b) in BOARDS.iter().enumerate() {
                let elf = b.build(ws)?;
                let mut req = Request::new(CI_PROMPT);
                req.chat = true;
                req.temperature = 0.0;
                req.max_tokens = CI_TOKENS;
                let request = write_request(ws, b, &req)?;
                // Every core the board has, then (once per board crate) one
                // core with a Q8_0 KV cache, streamed from a disk on a virt
                // board: both must give the host's ids and logits.
                let runs: &[usize] = if b.smp_check { &[b.max_cores, 1] } else { &[b.max_cores] };
                for &cores in runs {
                    let (from, ram) = if cores == 1 && b.virtio { (Model::Disk(&disk), STREAM_RAM) } else { (Model::Ram(&model), RAM) };
                    let cache = if cores == 1 { CacheType::Q8_0 } else { CacheType::F16 };
                    let HostAnswer { prompt: want_prompt, ids: want, ppl: want_ppl, crc: want_crc } = &answers[usize::from(cache == CacheType::Q8_0)];
                    let (want_ppl, want_crc) = (*want_ppl, *want_crc);
                    let request = if cache == CacheType::F16 {
                        request.clone()
                    } else {
                        let mut q8 = req;
                        q8.cache_type = cache;
                        write_request(ws, b, &q8)?
                    };
                    let t = Instant::now();
                    let out = boot(ws, b, &elf, from, ram, &request, cores, false, Duration::from_secs(900), false)?;
                    let got = ids(&out.lines, "ids:");
                    let got_prompt = ids(&out.lines, "prompt_ids:");
                    let ppl = perplexity(&out.lines);
                    let crc = logits_crc(&out.lines);
                    let shown = crc.map_or("none".to_string(), |c| format!("{c:#010x}"));
                    let rates = rates(&out.lines).unwrap_or_default();
                    let cores_word = match from {
                        Model::Disk(_) => "core, q8_0 KV cache, streamed in 64 MiB",
                        Model::Ram(_) if cores == 1 => "core, q8_0 KV cache",
                        Model::Ram(_) => "cores",
                    };
                    eprintln!(
                        "{} on {cores} {cores_word}: exit {:?} after {:.0} s; ids {:?}; logits crc32 {shown} (host {want_crc:#010x}); perplexity {ppl:?} (host {want_ppl:.4}); {rates}",
                        b.label,
                        out.status,
                        t.elapsed().as_secs_f64(),
                        got
                    );
                    let ppl_ok = ppl.is_some_and(|p| (p / want_ppl - 1.0).abs() <= PERPLEXITY_REL_TOL);
                    let cores_ok = stats_cores(&out.lines) == Some(cores);
                    if out.status != Some(0) || got.as_ref() != Some(want) || got_prompt.as_ref() != Some(want_prompt) || crc != Some(want_crc) || !ppl_ok || !cores_ok {
                        return Err(Failure::new(format!(
                            "{} on {cores} {cores_word}: exit {:?}, ids {got:?} (prompt {got_prompt:?}), logits crc32 {shown}, perplexity {ppl:?}, cores on the stats line {:?}; the host gave {want:?} (prompt {want_prompt:?}), logits crc32 {want_crc:#010x}, perplexity {want_ppl:.4} (within {PERPLEXITY_REL_TOL}); output:\n{}",
                            b.label,
                            out.status,
                            stats_cores(&out.lines),
                            out.lines.join("\n")
                        )));
                    }
                }
                let bad = boot(ws, b, &elf, Model::Ram(&corrupt), RAM, &request, b.max_cores, false, Duration::from_secs(300), false)?;
                let said = bad.lines.iter().find(|l| l.starts_with("error:")).cloned();
                eprintln!("{}: corrupted model: exit {:?}, {said:?}", b.label, bad.status);
                if bad.status == Some(0) || bad.status.is_none() || said.is_none() || ids(&bad.lines, "ids:").is_some() {
                    return Err(Failure::new(format!("{}: a corrupted model must give an error and a non-zero exit:\n{}", b.label, bad.lines.join("\n"))));
                }
                // Disk faults, once per virt board crate: one `error:` line
                // naming the problem, exit 1 (not a panic's 101, not a hang).
                for (what, drive, says) in faults.iter().filter(|_| b.virtio && b.smp_check) {
                    let bad = boot(ws, b, &elf, Model::Disk(drive), STREAM_RAM, &request, 1, false, Duration::from_secs(300), false)?;
                    let said: Vec<&String> = bad.lines.iter().filter(|l| l.starts_with("error:")).collect();
                    eprintln!("{}: {what}: exit {:?}, {said:?}", b.label, bad.status);
                    if bad.status != Some(1) || said.len() != 1 || !said[0].contains(says) || ids(&bad.lines, "ids:").is_some() {
                        return Err(Failure::new(format!("{}: {what} must give one `error:` line saying \"{says}\" and exit 1:\n{}", b.label, bad.lines.join("\n"))));
                    }
                }
                if i == 0 {
                    let long = "word ".repeat(CONTEXT_BUSTER_BYTES / 5);
                    let mut req = Request::new(&long);
                    req.max_tokens = 1;
                    let request = write_request(ws, b, &req)?;
                    let full = boot(ws, b, &elf, Model::Ram(&model), RAM, &request, b.max_cores, false, Duration::from_secs(300), false)?;
                    let said = full.lines.iter().find(|l| l.starts_with("error:")).cloned();
                    eprintln!("{}: a {} KiB prompt: exit {:?}, {said:?}", b.label, long.len() >> 10, full.status);
                    if full.status != Some(1) || !said.is_some_and(|l| l.contains("context")) {
                        return Err(Failure::new(format!("{}: a prompt too long for the context must say so and exit 1:\n{}", b.label, full.lines.join("\n"))));
                    }
                }
            }
            // A RISC-V CPU without the vector extension: the image must
            // refuse to start, not trap in its first vector instruction.
            let elf = NO_VECTOR.build(ws)?;
            let request = write_request(ws, &NO_VECTOR, &Request::new(CI_PROMPT))?;
            let out = boot(ws, &NO_VECTOR, &elf, Model::Ram(&model), RAM, &request, NO_VECTOR.max_cores, false, Duration::from_secs(60), false)?;
            let said: Vec<&String> = out.lines.iter().filter(|l| l.starts_with("error:")).collect();
            eprintln!("{}: exit {:?}, {said:?}", NO_VECTOR.label, out.status);
            if out.status != Some(1) || said.len() != 1 || !said[0].contains("no V extension") {
                return Err(Failure::new(format!("{}: must give one `error:` line about the missing V extension and exit 1:\n{}", NO_VECTOR.label, out.lines.join("\n"))));
            }
            let _ = std::fs::remove_file(&corrupt);
            for file in [TRUNCATED_DISK, READ_ERROR_RULES] {
                let _ = std::fs::remove_file(dir.join(file));
            }
            Ok(())
        }),
    }
}

/// What the host's `phi-edge run` gave for the CI prompt.
struct HostAnswer {
    /// Prompt token ids.
    prompt: Vec<u32>,
    /// Generated token ids.
    ids: Vec<u32>,
    /// Perplexity of the generated tokens.
    ppl: f64,
    /// CRC-32 of the logits.
    crc: u64,
}

/// The RISC-V image on a CPU without V (the CI checks it refuses to run).
const NO_VECTOR: Board = Board {
    name: "qemu-virt-riscv64",
    label: "qemu-virt-riscv64 (no V)",
    target: "riscv64gc-unknown-none-elf",
    objcopy: "riscv64-linux-gnu-objcopy",
    raw: "image.bin",
    objcopy_args: &[],
    qemu: |b| Ok(riscv_qemu("rv64,v=false", b)),
    max_cores: 4,
    smp_check: false,
    virtio: true,
};

/// The CI step's disk image cut short, in target/board/.
const TRUNCATED_DISK: &str = "truncated.disk";
/// The CI step's `blkdebug` rules for a failing read, in target/board/.
const READ_ERROR_RULES: &str = "read-error.blkdebug";

/// The disk faults of the CI step, as (what, QEMU drive, what the board's
/// `error:` line must say), written into `dir`: `model` cut short (at
/// 60%, in the tensor data), and its raw `disk` on a `blkdebug` drive
/// whose reads of one sector four fifths in fail with EIO (the board
/// checks every tensor's CRC at start-up, so the read fails there).
fn disk_faults(
    dir: &Path,
    model: &Path,
    disk: &Path,
) -> Result<Vec<(&'static str, PathBuf, &'static str)>> {
    let len = std::fs::metadata(model)
        .map_err(|e| Failure::new(format!("{}: {e}", model.display())))?
        .len();
    let truncated = dir.join(TRUNCATED_DISK);
    write_disk(model, &truncated, (len * 3 / 5) as usize)?;
    let rules = dir.join(READ_ERROR_RULES);
    let sector = len * 4 / 5 / 512;
    let text =
        format!("[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\nsector = \"{sector}\"\n");
    std::fs::write(&rules, text).map_err(|e| Failure::new(format!("{}: {e}", rules.display())))?;
    let failing = PathBuf::from(format!("blkdebug:{}:{}", rules.display(), disk.display()));
    Ok(vec![
        ("an image cut short on the disk", truncated, "truncated"),
        ("a disk read that fails (EIO)", failing, "failed"),
    ])
}

/// Copies `src` to `dst` with one byte flipped in the middle of the last
/// tensor's data (the image's tail is tensor data).
fn flip_tensor_byte(src: &Path, dst: &Path) -> Result<()> {
    let mut bytes =
        std::fs::read(src).map_err(|e| Failure::new(format!("{}: {e}", src.display())))?;
    let at = bytes.len() - 4096;
    bytes[at] ^= 0x10;
    std::fs::write(dst, bytes).map_err(|e| Failure::new(format!("{}: {e}", dst.display())))
}

/// `cargo xtask flash --board raspi4 --model M --out DIR [--prompt P
/// --max-tokens N --chat --temp T --seed S]`: a boot folder for the Pi's
/// SD card.
pub fn flash(ws: &Workspace, args: &[String]) -> Result<()> {
    let usage = || {
        Failure::new("usage: cargo xtask flash --board raspi4 --model M --out DIR [--prompt P] [--max-tokens N] [--chat] [--temp T --seed S]")
            .retry("cargo xtask flash --board raspi4 --model target/models/SmolLM2-135M-Instruct.Q4_1.gguf --out sdcard --chat --prompt \"Hello\"")
    };
    let mut out_dir = None;
    let mut rest = vec![];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--out" {
            out_dir = Some(PathBuf::from(it.next().ok_or_else(usage)?));
        } else {
            rest.push(a.clone());
        }
    }
    let out_dir = out_dir.ok_or_else(usage)?;
    if !rest.iter().any(|a| a == "--prompt") {
        rest.extend([
            "--prompt".to_string(),
            demo::DEFAULT_PROMPT.to_string(),
            "--chat".to_string(),
        ]);
    }
    let r = parse_run(&rest)?;
    if r.board != "raspi4" {
        return Err(Failure::new(format!(
            "`flash` writes SD-card folders for raspi4 only (got `{}`)",
            r.board
        ))
        .retry("cargo xtask flash --board raspi4 ..."));
    }
    let b = board(&r.board)?;
    let elf = b.build(ws)?;
    let model = model_image(ws, r.model.as_deref())?;
    let request = write_request(ws, b, &r.request())?;
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Failure::new(format!("{}: {e}", out_dir.display())))?;
    let copy = |from: &Path, to: &str| {
        std::fs::copy(from, out_dir.join(to))
            .map(|_| ())
            .map_err(|e| {
                Failure::new(format!(
                    "{} -> {}: {e}",
                    from.display(),
                    out_dir.join(to).display()
                ))
            })
    };
    copy(&elf.with_file_name(b.raw), "kernel8.img")?;
    write_initrd(&model, &request, &out_dir.join("model.phi"))?;
    let write = |name: &str, text: &str| {
        std::fs::write(out_dir.join(name), text)
            .map_err(|e| Failure::new(format!("{}: {e}", out_dir.join(name).display())))
    };
    write("config.txt", PI_CONFIG)?;
    write("FIRMWARE.txt", PI_FIRMWARE)?;
    eprintln!("flash: wrote {} (kernel8.img, model.phi = model + request, config.txt, FIRMWARE.txt); see boards/raspi4/README.md", out_dir.display());
    Ok(())
}

/// The Pi's config.txt: 64-bit kernel8.img, the model (with the request
/// appended) as initramfs right after it, UART0 on GPIO 14/15.
const PI_CONFIG: &str = "\
# phi-edge on Raspberry Pi 4B (written by `cargo xtask flash`)
arm_64bit=1
kernel=kernel8.img
initramfs model.phi followkernel
enable_uart=1
dtoverlay=disable-bt
";

/// The firmware files the user adds from the Raspberry Pi firmware release.
const PI_FIRMWARE: &str = "\
Copy these files from the Raspberry Pi firmware (github.com/raspberrypi/firmware,
boot/ folder, or the boot partition of Raspberry Pi OS) next to kernel8.img on the
FAT32 boot partition of the SD card; phi-edge does not ship them:

  start4.elf
  fixup4.dat
  bcm2711-rpi-4-b.dtb
  overlays/disable-bt.dtbo

Then connect a 3.3 V USB serial adapter to GPIO 14 (TX, pin 8) and 15 (RX, pin 10),
115200 8N1, and power the Pi: the answer appears on the serial console.
";

#[cfg(test)]
mod tests {
    use super::{icount, perplexity, rates, stats_cores};

    #[test]
    fn stats_line_fields() {
        let lines = [
            "ids: 60 23".to_string(),
            "stats: prompt 37 tokens, prefill 1.37 tok/s; generated 16 tokens, decode 0.97 tok/s (emulated); perplexity 2.7474; arena 12960387 bytes; kernels neon; cores 4".to_string(),
        ];
        assert_eq!(perplexity(&lines), Some(2.7474));
        assert_eq!(
            rates(&lines).as_deref(),
            Some("prefill 1.37 tok/s, decode 0.97 tok/s")
        );
        assert_eq!(stats_cores(&lines), Some(4));
        assert_eq!(icount(&lines), None);
        assert_eq!(perplexity(&lines[..1]), None);
    }

    #[test]
    fn stats_line_icount_fields() {
        let lines = [
            "stats: prompt 37 tokens, prefill 0.98 tok/s; generated 8 tokens, decode 0.75 tok/s (emulated); perplexity 1.2345; arena 12960387 bytes; kernels neon; cores 1; icount prefill 51234567 instructions/token, decode 61234567 instructions/token".to_string(),
        ];
        assert_eq!(icount(&lines), Some((51234567, 61234567)));
        assert_eq!(stats_cores(&lines), Some(1));
        assert_eq!(
            rates(&lines).as_deref(),
            Some("prefill 0.98 tok/s, decode 0.75 tok/s")
        );
    }
}
