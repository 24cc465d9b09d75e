rule run_al:
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
