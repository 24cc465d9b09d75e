# The config file costs less than an sbatch submission: write it on the submitting host.
localrules:
    write_config,


rule write_config:
    output:
        report(
            "results/{exp}/config.yaml",
            caption="../docs/captions/config.rst",
            category="{exp}",
            subcategory="Configuration",
        ),
    log:
        "logs/write_config/{exp}.log",
    params:
        experiment=get_experiment_params,
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal write-config --params {params.experiment:q} --experiment {wildcards.exp:q} --out {output} 2> {log}"


rule summarize_runs:
    input:
        get_run_csvs,
    output:
        summary=report(
            "results/{exp}/summary.csv", caption="../docs/captions/summary.rst", category="{exp}", subcategory="Tables"
        ),
        strategies="results/{exp}/strategies.csv",
    log:
        "logs/summarize_runs/{exp}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal summarize --runs {input} --out {output.summary} --strategies-out {output.strategies} 2> {log}"


rule tabulate:
    input:
        unpack(get_tabulate_inputs),
    output:
        report("results/{exp}/tables.html", caption="../docs/captions/tables.rst", category="{exp}", subcategory="Tables"),
    log:
        "logs/tabulate/{exp}.log",
    params:
        gan_metrics=get_gan_metrics_arg,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal table --summary {input.summary} --strategies {input.strategies} --html {output}"
        " --title {wildcards.exp:q} {params.gan_metrics} 2> {log}"


rule plot_accuracy:
    input:
        "results/{exp}/summary.csv",
    output:
        pdf="results/{exp}/accuracy.pdf",
        png=report(
            "results/{exp}/accuracy.png", caption="../docs/captions/accuracy.rst", category="{exp}", subcategory="Figures"
        ),
    log:
        "logs/plot_accuracy/{exp}.log",
    params:
        bound=get_bound_description,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal plot-accuracy --summary {input} --out {output.pdf} {output.png} --title {wildcards.exp:q}"
        " --bound {params.bound:q} 2> {log}"


rule plot_entropy:
    input:
        "results/{exp}/summary.csv",
    output:
        pdf="results/{exp}/entropy.pdf",
        png=report(
            "results/{exp}/entropy.png", caption="../docs/captions/entropy.rst", category="{exp}", subcategory="Figures"
        ),
    log:
        "logs/plot_entropy/{exp}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal plot-entropy --summary {input} --out {output.pdf} {output.png} --title {wildcards.exp:q} 2> {log}"


rule plot_timings:
    input:
        "results/{exp}/summary.csv",
    output:
        pdf="results/{exp}/timings.pdf",
        png=report(
            "results/{exp}/timings.png", caption="../docs/captions/timings.rst", category="{exp}", subcategory="Figures"
        ),
    log:
        "logs/plot_timings/{exp}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal plot-timings --summary {input} --out {output.pdf} {output.png} --title {wildcards.exp:q} 2> {log}"


rule replay_selection:
    input:
        unpack(get_run_inputs),
        indices=get_replay_indices,
    output:
        "results/{exp}/samples/{strategy}.npz",
    log:
        "logs/replay_selection/{exp}/{strategy}.log",
    params:
        settings=get_al_params,
        files=get_strategy_files_args,
        seed=get_replay_seed,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal replay-selection --params {params.settings:q} --pool {input.pool} --strategy {wildcards.strategy}"
        " --indices {input.indices} --seed {params.seed} --cycle 0 {params.files} --threads {threads}"
        " --out {output} 2> {log}"


rule plot_samples:
    input:
        get_sample_examples,
    output:
        report(
            "results/{exp}/samples.png", caption="../docs/captions/samples.rst", category="{exp}", subcategory="Figures"
        ),
    log:
        "logs/plot_samples/{exp}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal plot-samples --examples {input} --out {output} --title {wildcards.exp:q} 2> {log}"
