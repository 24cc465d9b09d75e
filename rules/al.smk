rule run_al:
    wildcard_constraints:
        strategy="|".join(re.escape(name) for name in LOOP_STRATEGIES),
    input:
        unpack(get_run_inputs),
    output:
        runs="results/{exp}/runs/{strategy}/seed{seed}.csv",
        indices="results/{exp}/runs/{strategy}/seed{seed}_indices.csv",
    log:
        "logs/run_al/{exp}/{strategy}/seed{seed}.log",
    benchmark:
        "benchmarks/run_al/{exp}/{strategy}/seed{seed}.tsv"
    params:
        settings=get_al_params,
        files=get_strategy_files_args,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal run-al --params {params.settings:q} --pool {input.pool} --test {input.test}"
        " --strategy {wildcards.strategy} --seed {wildcards.seed} {params.files} --threads {threads}"
        " --out {output.runs} --indices {output.indices} 2> {log}"


# GAAL: as run_al, plus the annotated synthetic images and their oracle labels.
rule run_gaal:
    wildcard_constraints:
        strategy="gaal",
    input:
        unpack(get_run_inputs),
    output:
        runs="results/{exp}/runs/{strategy}/seed{seed}.csv",
        indices="results/{exp}/runs/{strategy}/seed{seed}_indices.csv",
        synthetic="results/{exp}/runs/{strategy}/seed{seed}_synthetic.npz",
    log:
        "logs/run_al/{exp}/{strategy}/seed{seed}.log",
    benchmark:
        "benchmarks/run_al/{exp}/{strategy}/seed{seed}.tsv"
    params:
        settings=get_al_params,
        files=get_strategy_files_args,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal run-al --params {params.settings:q} --pool {input.pool} --test {input.test}"
        " --strategy {wildcards.strategy} --seed {wildcards.seed} {params.files} --threads {threads}"
        " --out {output.runs} --indices {output.indices} --synthetic {output.synthetic} 2> {log}"


# ADBA: its own loop in the GAN's latent space (binary experiments), plus the annotated lines.
rule run_adba:
    wildcard_constraints:
        strategy="adba",
    input:
        unpack(get_adba_inputs),
    output:
        runs="results/{exp}/runs/{strategy}/seed{seed}.csv",
        indices="results/{exp}/runs/{strategy}/seed{seed}_indices.csv",
        lines="results/{exp}/runs/{strategy}/seed{seed}_lines.npz",
    log:
        "logs/run_al/{exp}/{strategy}/seed{seed}.log",
    benchmark:
        "benchmarks/run_al/{exp}/{strategy}/seed{seed}.tsv"
    params:
        settings=get_al_params,
        files=get_strategy_files_args,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal run-al --params {params.settings:q} --pool {input.pool} --test {input.test}"
        " --strategy {wildcards.strategy} --seed {wildcards.seed} {params.files} --threads {threads}"
        " --out {output.runs} --indices {output.indices} --lines {output.lines} 2> {log}"
