# The GAN is the long pole of every experiment (ASAL, GAAL, ADBA and the disc features wait for it): start it
# before anything else that is ready.
rule train_gan:
    priority: 50
    input:
        pool=PATHS["pool"],
    output:
        model=PATHS["gan"],
        samples=report(
            "models/{exp}/gan_samples.png",
            caption="../docs/captions/gan_samples.rst",
            category="{exp}",
            subcategory="Pre-processing",
        ),
        losses="models/{exp}/gan_losses.csv",
    log:
        "logs/train_gan/{exp}.log",
    benchmark:
        "benchmarks/train_gan/{exp}.tsv"
    params:
        gan=get_gan_params,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal train-gan --params {params.gan:q} --pool {input.pool} --out {output.model}"
        " --samples {output.samples} --losses {output.losses} --threads {threads} 2> {log}"


rule train_oracle:
    input:
        pool=PATHS["pool"],
        test=PATHS["test"],
    output:
        model=PATHS["oracle"],
        metrics=PATHS["oracle_metrics"],
    log:
        "logs/train_oracle/{exp}.log",
    benchmark:
        "benchmarks/train_oracle/{exp}.tsv"
    params:
        oracle=get_oracle_params,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal train-oracle --params {params.oracle:q} --pool {input.pool} --test {input.test}"
        " --out {output.model} --metrics {output.metrics} --threads {threads} 2> {log}"


rule evaluate_gan:
    input:
        gan=PATHS["gan"],
        oracle=PATHS["oracle"],
        oracle_metrics=PATHS["oracle_metrics"],
        pool=PATHS["pool"],
    output:
        PATHS["gan_metrics"],
    log:
        "logs/evaluate_gan/{exp}.log",
    benchmark:
        "benchmarks/evaluate_gan/{exp}.tsv"
    params:
        quality=get_gan_quality_params,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal evaluate-gan --params {params.quality:q} --gan {input.gan} --oracle {input.oracle}"
        " --oracle-metrics {input.oracle_metrics} --pool {input.pool} --out {output} --threads {threads} 2> {log}"


rule train_autoencoder:
    input:
        pool=PATHS["pool"],
        test=PATHS["test"],
    output:
        model=PATHS["autoencoder"],
        reconstructions=report(
            "models/{exp}/autoencoder_reconstructions.png",
            caption="../docs/captions/autoencoder_reconstructions.rst",
            category="{exp}",
            subcategory="Pre-processing",
        ),
        metrics="models/{exp}/autoencoder_metrics.json",
    log:
        "logs/train_autoencoder/{exp}.log",
    benchmark:
        "benchmarks/train_autoencoder/{exp}.tsv"
    params:
        autoencoder=get_autoencoder_params,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal train-autoencoder --params {params.autoencoder:q} --pool {input.pool} --test {input.test}"
        " --out {output.model} --reconstructions {output.reconstructions} --metrics {output.metrics}"
        " --threads {threads} 2> {log}"


# ADBA's latent representation: every pool and test image inverted through the generator (linear in the pool).
rule invert_gan:
    input:
        gan=PATHS["gan"],
        pool=PATHS["pool"],
        test=PATHS["test"],
    output:
        PATHS["codes"],
    log:
        "logs/invert_gan/{exp}.log",
    benchmark:
        "benchmarks/invert_gan/{exp}.tsv"
    params:
        latent=get_latent_params,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal invert-gan --params {params.latent:q} --gan {input.gan} --pool {input.pool} --test {input.test}"
        " --out {output} --threads {threads} 2> {log}"
