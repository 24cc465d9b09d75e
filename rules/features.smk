rule project_features:
    input:
        unpack(get_feature_inputs),
    output:
        PATHS["pca"],
    log:
        "logs/project_features/{exp}_{space}.log",
    benchmark:
        "benchmarks/project_features/{exp}_{space}.tsv"
    params:
        pca=get_pca_params,
        model=get_feature_model_arg,
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal project-features --params {params.pca:q} --space {wildcards.space} --pool {input.pool} {params.model}"
        " --out {output} --threads {threads} 2> {log}"


rule build_index:
    input:
        PATHS["pca"],
    output:
        PATHS["index"],
    log:
        "logs/build_index/{exp}_{space}_{index}.log",
    benchmark:
        "benchmarks/build_index/{exp}_{space}_{index}.tsv"
    params:
        index=get_index_params,
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal build-index --params {params.index:q} --kind {wildcards.index} --pca {input} --out {output}"
        " --threads {threads} 2> {log}"
