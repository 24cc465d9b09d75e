# One AL run per (experiment, strategy, seed). A strategy's extra outputs (GAAL's annotated synthetic images,
# ADBA's lines) come from its registry entry: one rule per set of extra outputs that registered strategies
# declare, named run_al (none), run_al_synthetic, run_al_lines.
for _outputs, _strategies in group_by_outputs():

    rule:
        name:
            "run_al" + "".join(f"_{kind}" for kind in _outputs)
        wildcard_constraints:
            strategy="|".join(re.escape(name) for name in _strategies),
        input:
            unpack(get_run_inputs),
        output:
            **paths.run_outputs(strategy_spec(_strategies[0])),
        log:
            "logs/run_al/{exp}/{strategy}/seed{seed}.log",
        benchmark:
            "benchmarks/run_al/{exp}/{strategy}/seed{seed}.tsv"
        params:
            settings=get_al_params,
            files=get_strategy_files_args,
            outputs=get_run_outputs_args,
        threads: 1
        resources:
            mem_mb=4000,
            runtime=240,
        conda:
            "../envs/asal.yaml"
        shell:
            "asal run-al --params {params.settings:q} --pool {input.pool} --test {input.test}"
            " --strategy {wildcards.strategy} --seed {wildcards.seed} {params.files} --threads {threads}"
            " --out {output.runs} --indices {output.indices} {params.outputs} 2> {log}"
