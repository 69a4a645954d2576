"""How a fine-tune job starts Python, without importing torch: the workflow's parse reads it for every
run that plans a fine-tune, and a job's shell line asks it for a free port."""

import socket


def free_port():
    """A TCP port no process listens on now: the main process's port of a multi-GPU job, so that two such
    jobs on one node do not both take accelerate's default 29500."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher(gpus):
    """How a job of ``gpus`` GPUs starts ``-m vlcp finetune``: one Python process, or one per GPU through
    accelerate with a main-process port chosen free when the job starts."""
    if gpus <= 1:
        return "python -m"
    port = '"$(python -c "from vlcp.launch import free_port; print(free_port())")"'
    return f"accelerate launch --multi_gpu --num_processes {gpus} --num_machines 1 --main_process_port {port} -m"
